"""Submit: one request message in, at most one provider submission out, however often it comes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sora_relay.events import ErrorCode, EventError, ProviderSummary, iso_utc
from sora_relay.jobs import Job, JobState
from sora_relay.observability import logger
from sora_relay.ports import (
    Clock,
    InvalidReference,
    JobStore,
    Metrics,
    Provider,
    ReferenceFile,
    ReferenceFiles,
    ReferenceUnavailable,
    RequestQueue,
    StaleJob,
)
from sora_relay.provider import Accepted, Rejected, RetryLater
from sora_relay.request import InvalidRequest, parse_request
from sora_relay.services.budget import CreditBudget, NoRoom, Reservation
from sora_relay.services.lifecycle import Finisher
from sora_relay.services.policy import Policy


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    body: str
    receive_count: int = 1
    seconds_left: Callable[[], float] = lambda: math.inf  # of the invocation handling it


@dataclass(frozen=True)
class Done:
    """The message is consumed."""


@dataclass(frozen=True)
class Retry:
    """The message should come again after `delay`."""

    delay: timedelta
    reason: str


SubmitResult = Done | Retry


@dataclass(frozen=True)
class SubmitService:
    store: JobStore
    provider: Provider
    files: ReferenceFiles
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    budget: CreditBudget
    request_queue: RequestQueue

    def handle(self, message: InboundMessage) -> SubmitResult:
        now = self.clock()
        parsed = parse_request(message.body, message.message_id)
        logger.thread_safe_append_keys(request_id=parsed.request_id)  # records run on worker threads
        if isinstance(parsed, InvalidRequest):
            return self._end_invalid(parsed)
        request = parsed.request
        logger.debug("request received", extra={"prompt": request.prompt})
        claim = Job(
            request_id=parsed.request_id,
            state=JobState.RECEIVED,
            fingerprint=request.fingerprint(),
            created_at=now,
            updated_at=now,
            request=request,
            metadata=request.metadata,
            lease_until=now + self.policy.claim_lease,
            next_check_at=self.policy.stale_claim_check(now),
        )
        if self.store.create(claim):
            return self._submit(claim, message)
        existing = self.store.get(claim.request_id)
        if existing is None:  # created and gone again: only a race with a TTL deletion does this
            return Retry(self.policy.retry_delay(message.receive_count, None), "the job record vanished")
        return self._seen_before(existing, claim.fingerprint, message)

    def _end_invalid(self, invalid: InvalidRequest) -> SubmitResult:
        now = self.clock()
        job = Job(
            request_id=invalid.request_id,
            state=JobState.RECEIVED,
            fingerprint=invalid.fingerprint,
            created_at=now,
            updated_at=now,
            metadata=invalid.metadata,
        )
        error = EventError(code=ErrorCode.INVALID_REQUEST, message=invalid.message)
        failed = self.finisher.final_version(job, now, error=error)
        if not self.store.create(failed):
            existing = self.store.get(invalid.request_id)
            if existing is not None:
                self._note_duplicate(existing, invalid.fingerprint)
                return self._publish_if_owed(existing)
            return Done()
        logger.warning("invalid request", extra={"error_message": invalid.message})
        self.metrics.count("JobsFailed", code=ErrorCode.INVALID_REQUEST.value)
        self.finisher.publish(failed, now)
        return Done()

    def _seen_before(self, existing: Job, fingerprint: str, message: InboundMessage) -> SubmitResult:
        now = self.clock()
        if existing.state is JobState.RECEIVED and existing.fingerprint == fingerprint:
            if not existing.lease_expired(now):
                assert existing.lease_until is not None
                # Another invocation holds the claim; if it dies, this message takes over later.
                return Retry(existing.lease_until - now, "another invocation is submitting this request")
            taken = existing.moved(
                now, lease_until=now + self.policy.claim_lease, next_check_at=self.policy.stale_claim_check(now)
            )
            try:
                self.store.save(taken)
            except StaleJob:
                return Retry(self.policy.claim_lease, "another invocation took the claim first")
            return self._submit(taken, message)
        self._note_duplicate(existing, fingerprint)
        return self._publish_if_owed(existing)

    def _note_duplicate(self, existing: Job, fingerprint: str) -> None:
        self.metrics.count("DuplicateRequests")
        if existing.fingerprint != fingerprint:
            logger.warning("a request_id already seen came again with a different body; ignored")
            self.metrics.count("DuplicateRequestsWithDifferentBody")

    def _publish_if_owed(self, existing: Job) -> SubmitResult:
        # A final event whose publication failed earlier goes out now, with the same event_id.
        if existing.state.final and not existing.event_published:
            self.finisher.publish(existing, self.clock())
        return Done()

    def _submit(self, job: Job, message: InboundMessage) -> SubmitResult:
        assert job.request is not None
        reservation = self.budget.reserve(job.request, self.clock())
        if isinstance(reservation, NoRoom):
            return self._hold(job, reservation.recheck)
        try:
            files = self._fetch_files(job.request.files)
        except InvalidReference as error:
            self.budget.release(reservation)
            self.finisher.fail(job, ErrorCode.INVALID_REQUEST, str(error), self.clock())
            return Done()
        except ReferenceUnavailable as error:
            return self._release(job, message, RetryLater(str(error)), reservation)
        if message.seconds_left() < self.policy.submit_time_margin.total_seconds():
            text = "too little time left in this invocation to submit"
            return self._release(job, message, RetryLater(text), reservation)
        outcome = self.provider.submit(job.request, files)
        now = self.clock()
        match outcome:
            case Accepted(record):
                provider = ProviderSummary(
                    uuid=record.uuid,
                    id=record.id,
                    estimated_credit=record.estimated_credit,
                    expired_at=iso_utc(record.expired_at) if record.expired_at else None,
                )
                # If this write is lost, a redelivery after the lease would submit again:
                # the SDK's retries keep that window as short as the table allows.
                self.store.save(
                    job.moved(
                        now,
                        state=JobState.SUBMITTED,
                        provider=provider,
                        submitted_at=now,
                        lease_until=None,
                        progress=record.status_percentage or 0,
                        progress_at=now,
                        media_type=record.media_type,
                        next_check_at=now + self.policy.poll_interval,
                    )
                )
                self.budget.settle(reservation, record.estimated_credit)
                logger.info("submitted", extra={"provider_uuid": record.uuid})
                self.metrics.count("JobsSubmitted")
                if record.estimated_credit is not None:
                    self.metrics.count("CreditsEstimated", record.estimated_credit)
                return Done()
            case Rejected(status_code, reason):
                self.budget.release(reservation)
                message_text = f"the provider refused the request (HTTP {status_code}): {reason}"
                self.finisher.fail(job, ErrorCode.PROVIDER_REJECTED, message_text, now)
                return Done()
            case RetryLater():
                return self._release(job, message, outcome, reservation)

    def _fetch_files(self, uris: list[str]) -> list[ReferenceFile]:
        files = []
        for index, uri in enumerate(uris):
            try:
                files.append(self.files.fetch(uri))
            except InvalidReference as error:
                raise InvalidReference(f"files[{index}]: {error}") from error
        return files

    def _release(self, job: Job, message: InboundMessage, outcome: RetryLater, reservation: Reservation) -> Retry:
        """Give the claim back: the provider did not take the request, so a later delivery may."""
        self.budget.release(reservation)
        delay = self.policy.retry_delay(message.receive_count, outcome.retry_after)
        now = self.clock()
        self.store.save(job.moved(now, lease_until=None, next_check_at=self.policy.stale_claim_check(now + delay)))
        logger.warning("submission will be retried", extra={"reason": outcome.reason})
        self.metrics.count("SubmitRetries")
        return Retry(delay, outcome.reason)

    def _hold(self, job: Job, recheck: timedelta) -> SubmitResult:
        """The day's credit budget has no room for it: the request waits on the queue, unclaimed.

        It goes back as a new message under its request_id rather than staying hidden: each
        receive of a held message would count towards the queue's dead-letter limit."""
        assert job.request is not None
        try:
            self.store.delete(job)
        except StaleJob:
            return Retry(self.policy.claim_lease, "another invocation took the claim first")
        self.request_queue.resend(job.request_id, job.request, recheck)
        logger.info("held: the daily credit budget is spent", extra={"daily_limit": self.budget.daily_limit})
        self.metrics.count("RequestsHeld")
        return Done()
