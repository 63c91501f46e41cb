"""One due job's check: a status call and what the provider's record says, or the recovery of a
job that stopped moving."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sora_relay.domain.events import ErrorCode, ProviderSummary, iso_utc
from sora_relay.domain.jobs import Job, JobState, expiry
from sora_relay.domain.policy import Observation, Policy, trend_start, typical_generation_time
from sora_relay.domain.ports import ArchiveQueue, Clock, JobStore, Metrics, Provider, StaleJob
from sora_relay.domain.provider import GenerationRecord, ProviderUnavailable
from sora_relay.observability import logger
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget
from sora_relay.services.fallback import Fallbacks
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.poll.recovery import Recovery


@dataclass
class SweepGate:
    """What one sweep's checks share: the status calls in flight, whether a check may still
    start, and a pause of every status call after the provider answered "too many" (HTTP 429)."""

    status_calls: threading.BoundedSemaphore
    has_time: Callable[[], bool]
    paused_until: datetime | None = None

    def pause(self, until: datetime) -> None:
        # Assignments are atomic; the latest pause is as good as any.
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until


@dataclass(frozen=True)
class JobChecks:
    store: JobStore
    provider: Provider
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    budget: CreditBudget
    line: Line
    recovery: Recovery
    archive_queue: ArchiveQueue
    fallbacks: Fallbacks
    breakers: Breakers
    progress_events: bool = False

    def check(self, job: Job, gate: SweepGate) -> Outcome:
        """Move one due job as it stands; never raises (the job is checked again later)."""
        if not gate.has_time():
            return Outcome.LEFT_DUE  # a check queued before time ran short: the next sweep's
        # Jobs are checked on worker threads: each logs its own request_id.
        logger.thread_safe_append_keys(request_id=job.request_id)
        try:
            return self._check(job, gate)
        except StaleJob:
            return Outcome.SKIPPED  # another sweep moved it first
        except Exception:
            # One job's fault must not stop the sweep: the job is checked again after a backoff,
            # not at once (a sweep that re-sweeps due jobs would spin on it).
            logger.exception("checking a job failed")
            self._check_later(job)
            return Outcome.ERRORED
        finally:
            logger.thread_safe_remove_keys(["request_id"])

    def _put_off(self, job: Job, retry_after: float | None = None, deadline: datetime | None = None) -> None:
        """A check that got no answer: the next one after a backoff (as the job ages), and never
        sooner than a Retry-After; before the deadline, at it at the latest."""
        now = self.clock()
        later = self.policy.unreachable_delay(job.age(now))
        if retry_after is not None:
            later = max(later, self.policy.retry_delay(1, retry_after))
        next_check_at = now + later
        if deadline is not None and now < deadline:
            next_check_at = self.policy.status_check_at(now, later, deadline)
        self.store.save(job.check_again(now, next_check_at))

    def _check_later(self, job: Job) -> None:
        try:
            self._put_off(job)
        except Exception:
            # Moved meanwhile (its own next check stands), or the store fails too: the next
            # invocation's sweep finds it due.
            logger.exception("could not put off the next check of a job whose check failed")

    def _check(self, job: Job, gate: SweepGate) -> Outcome:
        now = self.clock()
        if job.state.final:
            if job.event_published:
                return Outcome.SKIPPED
            self.finisher.publish(job, now)
            return Outcome.PUBLISHED
        if job.state is JobState.COMPLETED:
            return self.recovery.handoff(job)
        if job.state is JobState.RECEIVED:
            return self.recovery.claim(job)
        if job.provider is None:
            return Outcome.SKIPPED
        # Whatever this check ends in, the job's video.submitted comes first.
        job = self.finisher.announce(job)
        deadline = job.started_at + self.policy.max_wait
        paused_until = gate.paused_until
        if paused_until is not None and now < paused_until:
            # The provider said too many: this job's call waits with the whole sweep's.
            self.store.save(job.check_again(now, max(paused_until, now + self.policy.poll_interval)))
            return Outcome.UNREACHABLE
        try:
            with gate.status_calls:
                record = self.provider.status(job.generation.uuid)
        except ProviderUnavailable as error:
            logger.warning("status call failed", extra={"reason": str(error)})
            if error.throttled:
                gate.pause(now + self.policy.retry_delay(1, max(error.retry_after or 0, 30)))
            if now >= deadline + self.policy.last_call_grace:
                self.line.free(job)
                return self._time_out(job, now, f"; its status could not be read at the end: {error}")
            self._put_off(job, error.retry_after, deadline)
            return Outcome.UNREACHABLE
        provider = _observed(job.generation, record)
        outcome = self._follow(job, record, provider, deadline)
        self._settle_used(job, provider)  # after the version that records it is saved
        if outcome in (Outcome.FAILED, Outcome.HANDED_OFF):
            self.line.free(job)  # the provider is done with it: its place goes to the next
        return outcome

    def _follow(self, job: Job, record: GenerationRecord, provider: ProviderSummary, deadline: datetime) -> Outcome:
        """Move the job as the provider's record says: failed, handed off, timed out, or running."""
        now = self.clock()
        checks = job.status_checks + 1
        if record.failed:
            observed = replace(job, provider=provider, status_checks=checks)  # saved with the next version
            if self.fallbacks.after_failure(observed, record) is not None:
                return Outcome.FELL_BACK  # its place freed, for the sweep's fill
            self.finisher.fail(observed, ErrorCode.GENERATION_FAILED, record.failure_message(), now)
            return Outcome.FAILED
        if record.ready:
            self.breakers.succeeded(job.claimed_request.model)
            completed = job.completed(
                now,
                provider,
                video_url=record.video_url,
                thumbnail_url=record.thumbnail_url,
                media_type=record.media_type,
                check_at=self.policy.handoff_check(now, expiry(provider), since=now),
            )
            self.store.save(completed)
            self.archive_queue.enqueue(job.request_id)
            return Outcome.HANDED_OFF
        if now >= deadline:
            # Asked once more at the deadline: only a video still not finished is given up.
            if not record.status and not record.status_percentage:
                self.breakers.failed(job.claimed_request.model, "a generation never started")
            return self._time_out(replace(job, provider=provider, status_checks=checks), now)
        progress = record.status_percentage if record.status_percentage is not None else job.progress
        moved = progress > job.progress
        if moved:
            self._tell_progress(job, progress, now)
        delay = self.policy.next_status_delay(
            age=job.age(now),
            typical=typical_generation_time(job.request),
            latest=Observation(progress, now),
            previous=trend_start(job.progress, job.progress_at, job.started_at, moved=moved),
        )
        self.store.save(
            job.running(now, provider, progress, check_at=self.policy.status_check_at(now, delay, deadline))
        )
        return Outcome.RUNNING

    def _tell_progress(self, job: Job, progress: int, now: datetime) -> None:
        """`video.progress`, when asked for: at most one per job per poll interval (the last one
        went out when the progress last moved, at the latest). Best effort: only the final
        event is guaranteed, so a failed publish is not tried again."""
        if not self.progress_events:
            return
        if job.progress_at is not None and now - job.progress_at < self.policy.poll_interval:
            return
        event = self.finisher.progress_event(job, progress, now)
        if event is None:
            return
        try:
            self.finisher.publisher.publish(event)
        except Exception:
            logger.exception("video.progress could not be published")
            self.metrics.count("ProgressEventsLost")

    def _settle_used(self, job: Job, provider: ProviderSummary) -> None:
        """The first time the provider states what the generation used (its new version saved):
        count it, and let the daily budget follow it."""
        used = provider.used_credit
        if used is None or (job.provider is not None and job.provider.used_credit is not None):
            return
        self.metrics.count("CreditsUsed", used)
        try:
            self.budget.settle_used(job, used)
        except Exception:
            logger.exception("the daily budget could not follow the credits used; it keeps the quote")

    def _time_out(self, job: Job, now: datetime, detail: str = "") -> Outcome:
        self.finisher.fail(
            job, ErrorCode.TIMED_OUT, f"no result within {self.policy.max_wait_minutes} minutes{detail}", now
        )
        return Outcome.FAILED


def _observed(provider: ProviderSummary, record: GenerationRecord) -> ProviderSummary:
    """The job's provider summary with what a status call stated anew."""
    update: dict[str, object] = {}
    if record.expired_at is not None:
        update["expired_at"] = iso_utc(record.expired_at)
    if record.used_credit is not None and provider.used_credit is None:
        update["used_credit"] = record.used_credit
    return provider.model_copy(update=update) if update else provider
