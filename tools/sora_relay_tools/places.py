"""The account's places held in memory, as the `line#places` item holds them: for the tests'
fakes and the line's benchmark, which keep the rest of the line in their own stores."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from sora_relay.domain.ports import Places, holder_of


class MemoryPlaces:
    """The LineStore port's places; `head` and `length` are the store's that holds the jobs."""

    def __init__(self) -> None:
        self.state = Places()
        # A conditional write, as DynamoDB makes one: the sweep's threads take places at once.
        self._lock = threading.Lock()
        self.taken: list[str] = []  # the request_id of every place taken, in order

    def places(self) -> Places:
        return self.state

    def take_place(self, place: str, limit: int, now: datetime) -> bool:
        with self._lock:
            if place in self.state.holders:
                return True
            if len(self.state.holders) >= limit or self.state.paused(now):
                return False
            self.state = replace(self.state, holders=self.state.holders | {place})
            self.taken.append(holder_of(place))
            return True

    def free_place(self, place: str) -> None:
        with self._lock:
            self.state = replace(self.state, holders=self.state.holders - {place})

    def hold_starts(self, reason: str | None) -> None:
        self.state = replace(self.state, held_by=reason)

    def slow_down(self, learned_limit: int, learned_until: datetime, resume_at: datetime, reason: str) -> None:
        self.state = replace(
            self.state,
            learned_limit=learned_limit,
            learned_until=learned_until,
            resume_at=resume_at,
            reason=reason,
            refusals=self.state.refusals + 1,
        )

    def speed_up(self, refusals: int) -> None:
        if self.state.refusals == refusals:
            self.state = replace(self.state, refusals=0, resume_at=None, reason=None)
