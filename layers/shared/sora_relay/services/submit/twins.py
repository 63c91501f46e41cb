"""Twins: requests whose generations the provider's history could not tell apart (the same
prompt as it records it, cut at a ";" or short). Should two twins both lose their answers, the
history could not say which generation is whose; so at most one twin at a time has an attempt
open, and the others go once it is settled (docs/reliability.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.ports import JobStore
from sora_relay.domain.provider import recorded_prompt_key


@dataclass(frozen=True)
class Twins:
    store: JobStore

    def take(self, job: Job, now: datetime) -> str | None:
        """Make `job` the twin that may have an attempt open; the request_id of the twin that
        may have one open instead, or None when `job` may go. Taken before the attempt is saved.

        Nothing releases it: a holder may have an attempt open while its job says so (until the
        attempt is adopted, found not taken, or ended) or while its claim's lease runs (it may
        be about to save one), so a holder that died or whose release was lost blocks no one."""
        key = recorded_prompt_key(job.claimed_request.prompt)
        holder = self.store.prompt_holder(key)
        if self._in_doubt(holder, job, now):
            return holder
        if self.store.take_prompt(key, job.request_id, previous=holder):
            return None
        return "another request"  # took it between the read and the write

    def blocking(self, job: Job, now: datetime) -> str | None:
        """The twin that may have an attempt open, which `job` must wait for; None when it may
        go (taking nothing: `take` decides, just before the attempt)."""
        holder = self.store.prompt_holder(recorded_prompt_key(job.claimed_request.prompt))
        return holder if self._in_doubt(holder, job, now) else None

    def _in_doubt(self, holder: str | None, job: Job, now: datetime) -> bool:
        if holder is None or holder == job.request_id:
            return False
        twin = self.store.get(holder)
        return (
            twin is not None and twin.state is JobState.RECEIVED and (twin.attempt_open or not twin.lease_expired(now))
        )
