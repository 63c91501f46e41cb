"""The submit service: claims a request, starts it from the line, fetches its references, and
submits it once; it waits in the line when anything holds it back."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

from sora_relay.domain.events import ErrorCode, EventError
from sora_relay.domain.families import RequestRules, parse_request
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import (
    Clock,
    InvalidReference,
    JobStore,
    Metrics,
    Provider,
    ReferenceFiles,
    ReferenceUnavailable,
    StaleJob,
)
from sora_relay.domain.provider import Accepted, MaybeTaken, Rejected, RetryLater
from sora_relay.domain.request import InvalidRequest, VideoRequest
from sora_relay.observability import logger
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget
from sora_relay.services.fallback import Fallbacks
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.submit.messages import Done, InboundMessage, Retry, SubmitResult
from sora_relay.services.submit.preflight import End, Go, Skip, preflight
from sora_relay.services.submit.references import REFERENCES_TIME, fetch_references
from sora_relay.services.submit.submissions import Adopted, AwaitHistory, GaveUp, NotTaken, Submissions
from sora_relay.services.submit.twins import Twins
from sora_relay.services.waits import Wait, WaitFor, twin_wait

# A request's references are not begun with less time left than this to read them.
_LEAST_READING_TIME = 5.0
# The longest a request waits for a reference slot (others' references are being sent).
_LONGEST_SLOT_WAIT = 60.0


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
    line: Line
    # How many requests with reference files are fetched and sent at once: each holds up to
    # MAX_FILES x MAX_FILE_BYTES in memory, and a batch's records run in parallel.
    reference_slots: threading.BoundedSemaphore
    rules: RequestRules
    fallbacks: Fallbacks
    breakers: Breakers

    @functools.cached_property
    def _submissions(self) -> Submissions:
        return Submissions(self.store, self.provider, self.finisher, self.metrics, self.policy, self.clock, self.budget)

    @functools.cached_property
    def _twins(self) -> Twins:
        return Twins(self.store)

    def handle(self, message: InboundMessage) -> SubmitResult:
        now = self.clock()
        parsed = parse_request(message.body, message.message_id, self.rules, self._earlier_request)
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
            lease_until=(lease_until := self.policy.claim_lease_until(now, message.seconds_left())),
            # Should this invocation die holding the claim, a sweep puts the request back then.
            next_check_at=lease_until,
        )
        try:
            if self.store.create(claim):
                return self._submit(claim, message)
            existing = self.store.get(claim.request_id)
            if existing is None:  # created and gone again: only a race with a TTL deletion does this
                return Retry(self.policy.retry_delay(message.receive_count, None), "the job record vanished")
            return self._seen_before(existing, claim.fingerprint, message)
        except StaleJob:
            # Moved under this invocation (canceled, say): the next delivery sees how it stands.
            return Retry(self.policy.retry_delay(message.receive_count, None), "the job changed meanwhile")

    def _earlier_request(self, request_id: str) -> VideoRequest | None:
        earlier = self.store.get(request_id)
        return earlier.request if earlier is not None else None

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
        if existing.state is JobState.RECEIVED and existing.asks_for(fingerprint):
            if existing.waiting:
                return Done()  # in line already: it starts when its turn comes
            if not existing.lease_expired(now):
                assert existing.lease_until is not None
                # Another invocation holds the claim; if it dies, this message takes over later.
                return Retry(existing.lease_until - now, "another invocation is submitting this request")
            lease_until = self.policy.claim_lease_until(now, message.seconds_left())
            taken = existing.leased(now, lease_until, check_at=lease_until)
            try:
                self.store.save(taken)
            except StaleJob:
                return Retry(self.policy.claim_lease, "another invocation took the claim first")
            return self._submit(taken, message)
        self._note_duplicate(existing, fingerprint)
        return self._publish_if_owed(existing)

    def _note_duplicate(self, existing: Job, fingerprint: str) -> None:
        self.metrics.count("DuplicateRequests")
        # A job canceled before its message was read has no body to compare with.
        if existing.fingerprint and not existing.asks_for(fingerprint):
            logger.warning("a request_id already seen came again with a different body; ignored")
            self.metrics.count("DuplicateRequestsWithDifferentBody")

    def _publish_if_owed(self, existing: Job) -> SubmitResult:
        # A final event whose publication failed earlier goes out now, with the same event_id.
        if existing.state.final and not existing.event_published:
            self.finisher.publish(existing, self.clock())
        return Done()

    def _submit(self, job: Job, message: InboundMessage) -> SubmitResult:
        if job.attempt_started_at is not None:
            reconciled = self._reconcile(job, message)
            if not isinstance(reconciled, Job):
                return reconciled
            job = reconciled  # not taken: the cleared attempt is saved, and it may go again
        if job.placed_at is None:
            # At once if nobody waits, a place is free and nothing holds it back; else in line.
            started = self.line.start(job, job.lease_until)
            if started is None:
                logger.info("waiting in line")
                return Done()
            job = started
        go = preflight(job, self.store, self.files, self.budget, self.breakers, self.clock())
        if isinstance(go, End):
            self._end(job, go.code, go.message)
            return Done()
        if isinstance(go, Skip):
            if self.fallbacks.skip(job, go.reason) is not None:
                self.line.fill()  # its place, freed, goes to the next in line (its fallback's turn too)
                return Done()
            go = Wait(WaitFor.BREAKER, go.reason)  # no fallback it may take any more: it waits
        if isinstance(go, Wait):
            self.line.wait(job, go)
            return Done()
        if not job.claimed_request.references:
            return self._fetch_and_send(job, message, go)
        # References are held in memory until the provider has them: a bounded number at once,
        # waited for only while this invocation has the time to read and send them.
        waited = message.seconds_left() - self.policy.submit_time_margin.total_seconds() - _LEAST_READING_TIME
        if not self.reference_slots.acquire(timeout=max(min(waited, _LONGEST_SLOT_WAIT), 0)):
            return self._release(job, message, "no reference slot came free in the time this invocation had")
        try:
            return self._fetch_and_send(job, message, go)
        finally:
            self.reference_slots.release()

    def _fetch_and_send(self, job: Job, message: InboundMessage, go: Go) -> SubmitResult:
        # Read within a whole deadline that leaves this invocation the time to submit.
        within = min(message.seconds_left() - self.policy.submit_time_margin.total_seconds(), REFERENCES_TIME)
        if job.claimed_request.references and within < _LEAST_READING_TIME:
            # The relay's lack of time: never counted against the request's references.
            return self._release(job, message, "too little time left in this invocation to read the references")
        try:
            files = fetch_references(self.files, job.claimed_request.references, within)
        except InvalidReference as error:
            self._end(job, ErrorCode.INVALID_REQUEST, str(error))
            return Done()
        except ReferenceUnavailable as error:
            if job.reference_failures + 1 >= self.policy.reference_attempts:
                text = f"{error} ({self.policy.reference_attempts} attempts)"
                self._end(job, ErrorCode.INVALID_REQUEST, text)
                return Done()
            return self._release(replace(job, reference_failures=job.reference_failures + 1), message, str(error))
        if message.seconds_left() < self.policy.submit_time_margin.total_seconds():
            return self._release(job, message, "too little time left in this invocation to submit")
        now = self.clock()
        twin = self._twins.take(job, now)
        if twin is not None:
            self.line.wait(job, twin_wait(twin))
            return Done()
        # Saved before anything is reserved or sent: whoever takes this claim over (this
        # invocation may die with the answer in hand) looks in the history before it ever
        # submits again, and gives back whatever the attempt reserved.
        attempt = job.attempting(now, go.price)
        try:
            self.store.save(attempt)
        except StaleJob:
            return Retry(self.policy.claim_lease, "another invocation took the claim first")
        if not self.budget.reserve(attempt):
            # Another request took the day's room since it was asked: back in line (which clears
            # the attempt, nothing reserved or sent).
            reason = f"another request took the day's last credits first (this one costs {go.price:g})"
            self.line.wait(attempt, Wait(WaitFor.BUDGET, reason))
            return Done()
        timeout = self.policy.submit_call_timeout.total_seconds()
        outcome = self.provider.submit(job.claimed_request, files, timeout, go.extends)
        match outcome:
            case Accepted(record):
                if not self.store.own_generation(record.uuid, job.request_id):
                    # A job with the same prompt and settings, looking for its own lost
                    # submission, adopted this one first: this job's is the other.
                    text = "the generation made for this request was adopted by an identical one"
                    return self._await_history(attempt, text, self.policy.reconcile_delay)
                self._submissions.record(attempt, record)
                self.line.accepted()
                return Done()
            case Rejected(status_code, reason):
                ended = self.fallbacks.after_refusal(attempt, status_code, reason)
                if ended is None:
                    self.line.fill()  # its place, freed, goes to the next in line
                else:
                    self._end(attempt, ErrorCode.PROVIDER_REJECTED, ended)
                self.budget.release(attempt)  # once the job no longer shows the attempt open
                return Done()
            case RetryLater(reason, retry_after, account_refused):
                if account_refused:
                    # The operator's to fix (credit, key): the line waits, and an alarm says so.
                    logger.error("the provider refused the account", extra={"reason": reason})
                    self.metrics.count("ProviderAccountRefusals")
                self.line.refused(attempt, reason, retry_after, account=account_refused)
                self.budget.release(attempt)  # once the job no longer shows the attempt open
                return Done()
            case MaybeTaken(reason, retry_after, server_error):
                self.metrics.count("SubmitAnswersLost")
                if server_error:
                    self.breakers.failed(job.claimed_request.model, reason)
                return self._await_history(attempt, reason, self.policy.reconcile_delay)

    def _reconcile(self, job: Job, message: InboundMessage) -> Job | SubmitResult:
        """The job with its earlier attempt cleared (saved) when the provider did not take it:
        the request may go again. Otherwise what becomes of the message."""
        within = message.seconds_left() - self.policy.submit_time_margin.total_seconds()
        match self._submissions.find_lost(job, message.receive_count, within):
            case AwaitHistory(reason, delay):
                return self._await_history(job, reason, delay)
            case GaveUp():
                self.line.free_and_fill(job)
                return Done()
            case Adopted():
                return Done()
            case NotTaken(cleared):
                return cleared

    def _end(self, job: Job, code: ErrorCode, text: str) -> None:
        """The job fails, and its place (if it holds one) goes to the next in line."""
        self.finisher.fail(job, code, text, self.clock())
        self.line.free_and_fill(job)

    def _release(self, job: Job, message: InboundMessage, reason: str) -> Retry:
        """Give the claim and the place back: a reference could not be read, or there is too
        little time left; the message comes again after a backoff, and goes back in line.
        The caller gives the reservation back."""
        delay = self.policy.retry_delay(message.receive_count, None)
        now = self.clock()
        released = job.released(now, check_at=self.policy.stale_claim_check(now + delay))
        self.store.save(released)
        self.line.free_and_fill(job)
        logger.warning("submission will be retried", extra={"reason": reason})
        self.metrics.count("SubmitRetries")
        return Retry(delay, reason)

    def _await_history(self, job: Job, reason: str, delay: timedelta) -> Done:
        """The provider may have taken the last attempt: this request is sent again only once
        the history says it was not. The poller reads it after `delay` (and again, until the
        bound, while it cannot tell); the message is consumed, so that no wait for the history
        ever reaches the dead-letter queue. The reservation stays (it may be spent), and so
        does the place."""
        now = self.clock()
        self.store.save(job.leased(now, None, check_at=now + delay))
        logger.warning("waiting to learn whether the provider took the submission", extra={"reason": reason})
        return Done()
