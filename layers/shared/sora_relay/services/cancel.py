"""Cancel: end a request before the provider has it, so that it is never paid for.

The provider documents no cancel, so only a request not yet submitted can be canceled: one
still on the queue (not yet read), held by the daily budget, or waiting to be tried again.
Cancel and submit race through the job's conditional writes: a submission reaches the
provider only after its attempt is saved on the version it read, and a cancel only ends a
version with no attempt on it. Whichever write lands first wins; the other sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import ErrorCode, EventError, VideoEvent, iso_utc
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.ports import Clock, JobStore, StaleJob
from sora_relay.services.finisher import Finisher

# A cancel whose write loses this many times in a row to writes of the worker gives up.
_TRIES = 5
CANCELED_MESSAGE = "canceled by the user before it was submitted"


@dataclass(frozen=True)
class Canceled:
    event: VideoEvent
    before_read: bool = False  # the stack had not read the request yet: it will not be
    already: bool = False  # canceled by an earlier call


@dataclass(frozen=True)
class NotCanceled:
    """Too late: `reason` says why, and what was spent."""

    reason: str
    job: Job | None


CancelResult = Canceled | NotCanceled


@dataclass(frozen=True)
class CancelService:
    store: JobStore
    finisher: Finisher
    clock: Clock

    def cancel(self, request_id: str) -> CancelResult:
        for _ in range(_TRIES):
            job = self.store.get(request_id)
            try:
                if job is None:
                    return self._cancel_unread(request_id)
                if job.state is JobState.RECEIVED and job.attempt_started_at is None:
                    return self._cancel_claim(job)
            except StaleJob:
                continue  # the worker moved it first: look again
            return _too_late(request_id, job)
        return NotCanceled(f"job {request_id} kept changing while it was being canceled; try again", None)

    def _cancel_unread(self, request_id: str) -> CancelResult:
        """Not read yet: the job is created ended, so that its message, when it comes, is a
        repeat of a finished request (no provider call, no second event)."""
        now = self.clock()
        # No body was read: no fingerprint to compare a later delivery with.
        unread = Job(request_id=request_id, state=JobState.RECEIVED, fingerprint="", created_at=now, updated_at=now)
        ended = self._ended(unread)
        if not self.store.create(ended):
            raise StaleJob(request_id)  # read meanwhile
        return Canceled(self._published(ended), before_read=True)

    def _cancel_claim(self, job: Job) -> CancelResult:
        ended = self._ended(job)
        self.store.save(ended)  # on the version read, or StaleJob
        return Canceled(self._published(ended))

    def _ended(self, job: Job) -> Job:
        error = EventError(code=ErrorCode.CANCELED, message=CANCELED_MESSAGE)
        # Nothing to recheck, release or resend: the version that ends it says so.
        return self.finisher.final_version(job, self.clock(), error=error)

    def _published(self, ended: Job) -> VideoEvent:
        """The event, published now (or by a sweep, should this fail: the job owes it)."""
        assert ended.final_event is not None
        self.finisher.publish(ended, self.clock())
        return ended.final_event


def _too_late(request_id: str, job: Job) -> CancelResult:
    if job.final_event is not None and job.state.final:
        error = job.final_event.error
        if error is not None and error.code is ErrorCode.CANCELED:
            return Canceled(job.final_event, already=True)
        outcome = job.final_event.event.value + (f" ({error.code.value})" if error is not None else "")
        return NotCanceled(f"job {request_id} has already ended: {outcome}{_spent(job)}", job)
    if job.provider is None:
        # An attempt is being made, or its answer was lost: the provider may have it.
        return NotCanceled(
            f"job {request_id} is being submitted, or the answer to its submission was lost and the provider"
            " may have taken it: it can no longer be canceled",
            job,
        )
    return NotCanceled(
        f"job {request_id} was submitted to the provider{_spent(job)}; GeminiGen offers no cancel, so it runs"
        " to its end",
        job,
    )


def _spent(job: Job) -> str:
    """What the provider charged, or quoted, for the job's generation."""
    provider = job.provider
    if provider is None:
        return ""
    when = f" at {iso_utc(job.submitted_at)}" if job.submitted_at else ""
    if provider.used_credit is not None:
        cost = f"{provider.used_credit:g} credits used"
    elif provider.estimated_credit is not None:
        cost = f"{provider.estimated_credit:g} credits estimated"
    else:
        cost = "its cost not stated"
    return f"{when} (generation {provider.uuid}, {cost})"
