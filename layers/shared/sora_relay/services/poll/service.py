"""The poller: sweeps over the jobs whose next check is due, status calls in parallel, and moves
each job as its provider record says."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sora_relay.domain.events import ErrorCode, ProviderSummary, iso_utc
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Observation, Policy, trend_start, typical_generation_time
from sora_relay.domain.ports import ArchiveQueue, Clock, JobStore, Metrics, Provider, RequestQueue, StaleJob, SweepQueue
from sora_relay.domain.provider import GenerationRecord, ProviderUnavailable
from sora_relay.observability import logger
from sora_relay.services.budget import CreditBudget
from sora_relay.services.finisher import Finisher
from sora_relay.services.poll.outcome import Outcome, SweepReport
from sora_relay.services.poll.recovery import Recovery
from sora_relay.services.submit.submissions import Submissions

# Another sweep starts only with this much of the invocation's time left.
SWEEP_RESERVE = timedelta(minutes=1)


@dataclass(frozen=True)
class PollService:
    store: JobStore
    shards: int
    provider: Provider
    request_queue: RequestQueue
    archive_queue: ArchiveQueue
    sweep_queue: SweepQueue
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    budget: CreditBudget
    # Publish video.progress as the provider's percentage moves (the ProgressEvents parameter).
    progress_events: bool = False
    concurrency: int = 16
    batch_size: int = 100
    # How long one invocation keeps sweeping for jobs coming due: less than the schedule's period.
    window: timedelta = timedelta(seconds=50)
    sleep: Callable[[float], None] = time.sleep

    @functools.cached_property
    def _recovery(self) -> Recovery:
        submissions = Submissions(
            self.store, self.provider, self.finisher, self.metrics, self.policy, self.clock, self.budget
        )
        return Recovery(
            self.store,
            self.request_queue,
            self.archive_queue,
            self.finisher,
            self.metrics,
            self.policy,
            self.clock,
            submissions,
        )

    def sweep(self, shards: Sequence[int] | None = None, has_time: Callable[[], bool] = lambda: True) -> SweepReport:
        """Check every job of the shards (all by default) due now, once. The jobs are read a
        page of `batch_size` a shard at a time, and each page goes to the workers as soon as it
        is read, so that the next pages are read while the last ones are checked (at most two
        rounds of pages at once). A shard still holding due jobs when time runs out is
        reported as backlogged."""
        now = self.clock()
        starts: dict[int, object | None] = dict.fromkeys(range(self.shards) if shards is None else shards)
        outcomes: Counter[Outcome] = Counter()
        # `concurrency` bounds the status calls in flight (the provider's limit), not the
        # workers: twice as many, so that a job's write to the table never holds a call's place.
        # One call at a time means one job at a time: a sweep whose calls come in a set order.
        status_calls = threading.BoundedSemaphore(self.concurrency)
        check = functools.partial(self._check_guarded, status_calls=status_calls)
        with ThreadPoolExecutor(max_workers=2 * self.concurrency if self.concurrency > 1 else 1) as pool:
            checking: list[Future[Outcome]] = []  # the round of pages read before this one
            while starts and (not checking or has_time()):
                reading: list[Future[Outcome]] = []
                for shard, start in list(starts.items()):
                    page = self.store.due(shard, now, self.batch_size, start)
                    reading += [pool.submit(check, job) for job in self._due_first(page.jobs, now)]
                    if page.next_page is None:
                        del starts[shard]
                    else:
                        starts[shard] = page.next_page
                outcomes.update(future.result() for future in checking)
                checking = reading
            outcomes.update(future.result() for future in checking)
        logger.info("sweep done", extra={k.value: v for k, v in outcomes.items()})
        return SweepReport(outcomes=outcomes, backlogged=sorted(starts))

    def _due_first(self, jobs: list[Job], now: datetime) -> list[Job]:
        """Soonest deadline first: hand-offs go out (and are archived) in order of expired_at."""
        for job in jobs:
            assert job.next_check_at is not None
            self.metrics.count("PollLag", (now - job.next_check_at).total_seconds(), unit="Seconds")
        return sorted(jobs, key=_deadline)

    def sweep_while(self, seconds_left: Callable[[], float], shards: Sequence[int] | None = None) -> Counter[Outcome]:
        """Sweep, and for up to `window` after the first sweep, sweep again at the next due time
        when it comes within the window, so that a finished video waits for the next minute's
        invocation only when nothing was due before it. Work still due when time runs out is
        fanned out: each shard with a backlog goes on the sweep queue, for an invocation of its own.

        Only the shards whose sweep lease this invocation takes are swept (one sweep per shard at
        a time, so no job is checked by two at once); the others are being swept already."""
        wanted = list(range(self.shards)) if shards is None else list(shards)
        holder = uuid.uuid4().hex
        now = self.clock()
        lease_until = self.policy.claim_lease_until(now, seconds_left())
        mine = [shard for shard in wanted if self.store.take_sweep(shard, holder, lease_until, now)]
        if len(mine) < len(wanted):
            logger.info("shards being swept by another invocation", extra={"shards": sorted(set(wanted) - set(mine))})
            self.metrics.count("SweepsSkipped", len(wanted) - len(mine))
        try:
            return self._sweep_while(lambda: seconds_left() > SWEEP_RESERVE.total_seconds(), mine)
        finally:
            for shard in mine:
                self.store.end_sweep(shard, holder)

    def _sweep_while(self, has_time: Callable[[], bool], shards: list[int]) -> Counter[Outcome]:
        total: Counter[Outcome] = Counter()
        until = self.clock() + self.window
        while shards:
            report = self.sweep(shards, has_time)
            total.update(report.outcomes)
            if report.backlog:
                self.sweep_queue.fan_out(report.backlogged)
                self.metrics.count("SweepsFannedOut", len(report.backlogged))
                logger.info("due jobs left for more invocations", extra={"shards": report.backlogged})
                return total
            if not self.window or not has_time() or report.outcomes[Outcome.ERRORED]:
                # After a failed check, no sweep again in this invocation: the same fault
                # (a store that cannot record the backoff) would make every sweep repeat it.
                return total
            soonest = min(filter(None, (self.store.next_due(shard) for shard in shards)), default=None)
            if soonest is None or soonest > until:
                return total
            self.sleep(max((soonest - self.clock()).total_seconds(), 0.0))
        return total

    def _check_guarded(self, job: Job, status_calls: threading.BoundedSemaphore) -> Outcome:
        # Jobs are checked on worker threads: each logs its own request_id.
        logger.thread_safe_append_keys(request_id=job.request_id)
        try:
            return self._check(job, status_calls)
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
        self.store.save(job.moved(now, next_check_at=next_check_at))

    def _check_later(self, job: Job) -> None:
        try:
            self._put_off(job)
        except Exception:
            # Moved meanwhile (its own next check stands), or the store fails too: the next
            # invocation's sweep finds it due.
            logger.exception("could not put off the next check of a job whose check failed")

    def _check(self, job: Job, status_calls: threading.BoundedSemaphore) -> Outcome:
        now = self.clock()
        if job.state.final:
            if job.event_published:
                return Outcome.SKIPPED
            self.finisher.publish(job, now)
            return Outcome.PUBLISHED
        if job.state is JobState.COMPLETED:
            return self._recovery.handoff(job)
        if job.state is JobState.RECEIVED:
            return self._recovery.claim(job)
        if job.provider is None:
            return Outcome.SKIPPED
        # Whatever this check ends in, the job's video.submitted comes first.
        job = self.finisher.announce(job)
        assert job.provider is not None
        deadline = job.started_at + self.policy.max_wait
        try:
            with status_calls:
                record = self.provider.status(job.provider.uuid)
        except ProviderUnavailable as error:
            logger.warning("status call failed", extra={"reason": str(error)})
            if now >= deadline + self.policy.last_call_grace:
                return self._time_out(job, now, f"; its status could not be read at the end: {error}")
            self._put_off(job, error.retry_after, deadline)
            return Outcome.UNREACHABLE
        provider = _observed(job.provider, record)
        outcome = self._follow(job, record, provider, deadline)
        self._settle_used(job, provider)  # after the version that records it is saved
        return outcome

    def _follow(self, job: Job, record: GenerationRecord, provider: ProviderSummary, deadline: datetime) -> Outcome:
        """Move the job as the provider's record says: failed, handed off, timed out, or running."""
        now = self.clock()
        checks = job.status_checks + 1
        if record.failed:
            observed = replace(job, provider=provider, status_checks=checks)  # saved with the final version
            self.finisher.fail(observed, ErrorCode.GENERATION_FAILED, record.failure_message(), now)
            return Outcome.FAILED
        if record.ready:
            completed = job.moved(
                now,
                state=JobState.COMPLETED,
                completed_at=now,
                provider=provider,
                status_checks=checks,
                progress=100,
                video_url=record.video_url,
                thumbnail_url=record.thumbnail_url,
                media_type=record.media_type or job.media_type,
            )
            completed = replace(completed, next_check_at=self.policy.handoff_check(now, completed.expired_at))
            self.store.save(completed)
            self.archive_queue.enqueue(job.request_id)
            return Outcome.HANDED_OFF
        if now >= deadline:
            # Asked once more at the deadline: only a video still not finished is given up.
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
            job.moved(
                now,
                provider=provider,
                status_checks=checks,
                progress=progress,
                progress_at=now if moved else job.progress_at,
                next_check_at=self.policy.status_check_at(now, delay, deadline),
            )
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
        day = job.started_at.astimezone(UTC).date()
        try:
            self.budget.settle_used(day, job.credits_counted, used)
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


def _deadline(job: Job) -> datetime:
    return job.expired_at or datetime.max.replace(tzinfo=UTC)
