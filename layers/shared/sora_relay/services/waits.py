"""Why a request may not start yet, besides a place: the day's credit budget, a twin whose
attempt is open, an earlier video not finished, its model's breaker open. Each is a reason to
wait in the one line (docs/line.md): asked before a place is taken, never by resending a message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sora_relay.domain.jobs import Job
from sora_relay.domain.ports import JobStore
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget, NoRoom
from sora_relay.services.submit.extensions import NotYet, extended_generation
from sora_relay.services.submit.twins import Twins


class WaitFor(StrEnum):
    BUDGET = "budget"
    TWIN = "twin"
    EXTENSION = "extension"
    BREAKER = "breaker"  # its model's breaker is open, and it has no fallback


@dataclass(frozen=True)
class Wait:
    kind: WaitFor
    reason: str

    @property
    def holds_the_line(self) -> bool:
        """Whether the requests behind it wait too: the budget keeps the line's order (a cheaper
        request never overtakes a dearer one); a twin or an extension waits alone."""
        return self.kind is WaitFor.BUDGET


def twin_wait(twin: str) -> Wait:
    """Waiting for `twin`: sent now, a request's generation could not be told from its twin's in
    the history should both answers be lost, so it goes once the twin's attempt is settled."""
    return Wait(WaitFor.TWIN, f"waiting for request {twin}, whose prompt the provider records alike, to be submitted")


@dataclass(frozen=True)
class Waits:
    store: JobStore
    budget: CreditBudget
    breakers: Breakers

    def reason(self, job: Job, now: datetime) -> Wait | None:
        """Why `job` may not start now; None when it may (a price above the whole budget is no
        wait: the submit function ends the request, saying so)."""
        request = job.claimed_request
        if request.extend is not None:
            earlier = extended_generation(self.store, request.extend.request_id)
            if isinstance(earlier, NotYet):
                return Wait(WaitFor.EXTENSION, earlier.reason)
        if not request.fallback:  # with one, the submitter sends it on to its fallback at once
            blocked = self.breakers.blocked(job)
            if blocked is not None:
                return Wait(WaitFor.BREAKER, blocked)
        twin = Twins(self.store).blocking(job, now)
        if twin is not None:
            return twin_wait(twin)
        room = self.budget.room(request, now)
        if isinstance(room, NoRoom) and room.ever:
            return Wait(WaitFor.BUDGET, room.reason)
        return None
