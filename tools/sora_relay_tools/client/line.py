"""Where waiting requests stand in the line, and why they wait, as people ask it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sora_relay.adapters.line import DynamoLine
from sora_relay.domain.events import iso_utc
from sora_relay.domain.jobs import Job


@dataclass(frozen=True)
class LinePlace:
    """A waiting request's place: how many start before it, and why it has not started."""

    ahead: int
    why: str


@dataclass(frozen=True)
class LineView:
    line: DynamoLine
    size: int  # the stack's MaxActiveGenerations

    def places_of(self, jobs: Iterable[Job]) -> dict[str, LinePlace]:
        """Each waiting job's place (one read of the line, stopped once they are all found)."""
        waiting = {job.request_id: job for job in jobs if job.waiting}
        if not waiting:
            return {}
        why = self.why()
        found: dict[str, LinePlace] = {}
        for position, request_id in enumerate(self.line.in_order()):
            if request_id in waiting:
                # Its own reason (the budget, a twin, an earlier video), else the line's.
                found[request_id] = LinePlace(position, waiting[request_id].held or why)
                if len(found) == len(waiting):
                    break
        return found

    def why(self) -> str:
        now = datetime.now(UTC)
        places = self.line.places()
        limit = places.limit(self.size, now)
        taken = f"{len(places.holders)} of {limit} places taken by running generations"
        if places.held_by is not None:
            return f"{taken}; {places.held_by}"
        if places.paused(now) and places.resume_at is not None:
            paused = f"starts paused until {iso_utc(places.resume_at)}"
            return f"{taken}; {paused} after the provider refused one: {places.reason}"
        if limit < self.size:
            return f"{taken} (the provider took no more lately: {places.reason}; MaxActiveGenerations is {self.size})"
        return taken
