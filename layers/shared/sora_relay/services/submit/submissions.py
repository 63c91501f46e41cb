"""What the provider took: a submission recorded once accepted, and a submission whose answer
was lost found in the account's history before anything is sent again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sora_relay.domain.events import ProviderSummary, iso_utc
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, Metrics, Provider
from sora_relay.domain.provider import GenerationRecord, ProviderUnavailable
from sora_relay.observability import logger
from sora_relay.services.budget import CreditBudget, Reservation
from sora_relay.services.finisher import Finisher


@dataclass(frozen=True)
class Adopted:
    """The provider had taken it: the generation is now the job's, recorded as submitted."""


@dataclass(frozen=True)
class NotTaken:
    """The history shows the provider did not take it: it may be sent again."""


@dataclass(frozen=True)
class AwaitHistory:
    """The history cannot tell yet: look again after `delay`."""

    reason: str
    delay: timedelta


@dataclass(frozen=True)
class Submissions:
    store: JobStore
    provider: Provider
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    budget: CreditBudget

    def find_lost(self, job: Job, receive_count: int) -> Adopted | NotTaken | AwaitHistory:
        """An earlier attempt may have been taken by the provider: adopt what it made, found in
        the account's history (a generation since the attempt began, asked for as this request
        asks, that no other job owns), and record it as submitted."""
        assert job.request is not None
        assert job.attempt_started_at is not None
        now = self.clock()
        readable_at = job.attempt_started_at + self.policy.reconcile_delay
        if now < readable_at:
            return AwaitHistory("the history may not show the last attempt yet", readable_at - now)
        try:
            generations = self.provider.recent_generations(job.attempt_started_at - self.policy.provider_clock_skew)
        except ProviderUnavailable as error:
            delay = self.policy.retry_delay(receive_count, error.retry_after)
            return AwaitHistory(f"the account's history could not be read: {error}", delay)
        reservation = self.budget.reserved(job.request, job.attempt_started_at, job.attempt_reserved)
        candidates = [generation for generation in generations if generation.may_be(job.request)]
        latest = datetime.max.replace(tzinfo=UTC)
        for record in sorted(candidates, key=lambda generation: generation.created_at or latest):
            if self.store.own_generation(record.uuid, job.request_id):
                logger.warning("a submission whose answer was lost was found and adopted", extra={"uuid": record.uuid})
                self.metrics.count("SubmissionsAdopted")
                self.record(job, record, reservation)
                return Adopted()
        logger.info("the last attempt was not taken by the provider; submitting again")
        self.metrics.count("AttemptsNotTaken")
        self.budget.release(reservation)
        return NotTaken()

    def record(self, job: Job, record: GenerationRecord, reservation: Reservation) -> None:
        """The job as submitted: announced (video.submitted), saved, its credits settled."""
        now = self.clock()
        provider = ProviderSummary(
            uuid=record.uuid,
            id=record.id,
            estimated_credit=record.estimated_credit,
            expired_at=iso_utc(record.expired_at) if record.expired_at else None,
        )
        submitted = job.moved(
            now,
            state=JobState.SUBMITTED,
            provider=provider,
            submitted_at=job.attempt_started_at or now,
            lease_until=None,
            attempt_started_at=None,
            attempt_reserved=0,
            credits_counted=self.budget.counted(reservation, record.estimated_credit),
            progress=record.status_percentage or 0,
            progress_at=now,
            media_type=record.media_type,
            next_check_at=now + self.policy.poll_interval,
        )
        # Announced before it is saved, so that announcing costs no second write: should the
        # save not land, the job is taken over and adopted, and announced again (same event_id).
        submitted = self._announced(submitted)
        self.store.save(submitted)
        self.budget.settle(reservation, record.estimated_credit)
        logger.info("submitted", extra={"provider_uuid": record.uuid})
        self.metrics.count("JobsSubmitted")
        if record.estimated_credit is not None:
            self.metrics.count("CreditsEstimated", record.estimated_credit)

    def _announced(self, job: Job) -> Job:
        """The job after its `video.submitted` went out, or as it was if that failed: then the
        next status check announces it (before any later event)."""
        try:
            return self.finisher.announce(job)
        except Exception:
            logger.exception("video.submitted could not be published; the next status check will")
            self.metrics.count("EventsDeferred")
            return job
