"""One request, by its request_id: its record, its final event, its video."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sora_relay.domain.events import VideoEvent
from sora_relay.domain.jobs import Job
from sora_relay.services.cancel import Canceled
from sora_relay_tools.client.errors import (
    WaitTimedOut,
)

if TYPE_CHECKING:
    from sora_relay_tools.client.relay import Relay


class JobHandle:
    """One request, by its request_id."""

    def __init__(self, relay: Relay, request_id: str) -> None:
        self.relay = relay
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"JobHandle({self.request_id!r})"

    def record(self) -> Job | None:
        return self.relay.record(self.request_id)

    def wait(
        self,
        timeout: float = 3600,
        *,
        every: float = 2.0,
        on_update: Callable[[Job | None], None] = lambda _: None,
    ) -> VideoEvent:
        """Read the job's record every `every` seconds until its final event; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.record()
            on_update(job)
            if job is not None and job.published_event is not None:
                return job.published_event
            if time.monotonic() >= deadline:
                state = job.state if job is not None else "not yet read by the stack, or held by the credit budget"
                raise WaitTimedOut(f"job {self.request_id} has no final event after {timeout:.0f} s ({state})")
            time.sleep(every)

    def download(self, target: Path | str = ".") -> Path:
        return self.relay.download(self.request_id, target)

    def cancel(self) -> Canceled:
        return self.relay.cancel(self.request_id)

    def url(self, expires_in: int = 3600) -> str:
        return self.relay.url(self.request_id, expires_in)
