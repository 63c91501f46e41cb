"""The poller: sweeps over the jobs whose next check is due, checks them in parallel
(services/poll/checks.py), tends the line, and hands a backlog on before its time runs out."""

from __future__ import annotations

import functools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import ArchiveQueue, Clock, JobStore, Metrics, Provider, RequestQueue, SweepQueue
from sora_relay.observability import logger
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget
from sora_relay.services.fallback import Fallbacks
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.poll.checks import JobChecks, SweepGate
from sora_relay.services.poll.outcome import Outcome, SweepReport
from sora_relay.services.poll.recovery import Recovery
from sora_relay.services.submit.submissions import Submissions

# No check starts with less than this left of the invocation: a status call (30 s at most) and
# the writes after it end, the sweep leases are given back and a backlog is handed on, in time.
SWEEP_RESERVE = timedelta(minutes=1)
# Between two sweeps of one invocation, at least this long.
RESWEEP_STEP = timedelta(seconds=1)


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
    line: Line
    fallbacks: Fallbacks
    breakers: Breakers
    # Publish video.progress as the provider's percentage moves (the ProgressEvents parameter).
    progress_events: bool
    concurrency: int
    # How long one invocation keeps sweeping for jobs coming due: less than the schedule's period.
    window: timedelta
    sleep: Callable[[float], None]
    batch_size: int = 100

    @functools.cached_property
    def _checks(self) -> JobChecks:
        submissions = Submissions(
            self.store, self.provider, self.finisher, self.metrics, self.policy, self.clock, self.budget
        )
        recovery = Recovery(
            self.store,
            self.request_queue,
            self.archive_queue,
            self.finisher,
            self.metrics,
            self.policy,
            self.clock,
            submissions,
            self.line,
        )
        return JobChecks(
            self.store,
            self.provider,
            self.finisher,
            self.metrics,
            self.policy,
            self.clock,
            self.budget,
            self.line,
            recovery,
            self.archive_queue,
            self.fallbacks,
            self.breakers,
            self.progress_events,
        )

    def _fill_line(self) -> None:
        """Start what may start; should the line fail, the sweep goes on (the next minute's
        poll fills it)."""
        self._upkeep("fill", self.line.fill)

    def tend_line(self) -> None:
        """Once a minute (the scheduled poll): free the places whose holders died, report the
        line, and start what may start. Never raises: each step's fault is logged and counted,
        and the sweep (status checks, recovery, events) goes on whatever the line's upkeep met."""
        self._upkeep("heal", self.line.heal)
        self._upkeep("report", self.line.report)
        self._upkeep("fill", self.line.fill)

    def _upkeep(self, step: str, do: Callable[[], object]) -> None:
        try:
            do()
        except Exception:
            logger.exception("the line's upkeep failed", extra={"step": step})
            self.metrics.count("LineUpkeepFailed", step=step)

    def sweep(
        self,
        shards: Sequence[int] | None = None,
        has_time: Callable[[], bool] = lambda: True,
        checked: set[tuple[str, int]] | None = None,
    ) -> SweepReport:
        """Check every job of the shards (all by default) due now, once. The jobs are read a
        page of `batch_size` a shard at a time, and each page goes to the workers as soon as it
        is read, so that the next pages are read while the last ones are checked (at most two
        rounds of pages at once). No check starts once `has_time` says no: a check still
        queued then is left due, and its shard, like one still holding unread due jobs, is
        reported as backlogged. `checked`, the versions checked already by this invocation: a
        job the index shows again as it was then is a stale copy (the index is eventually
        consistent), not checked again."""
        now = self.clock()
        checked = set() if checked is None else checked
        starts: dict[int, object | None] = dict.fromkeys(range(self.shards) if shards is None else shards)
        outcomes: Counter[Outcome] = Counter()
        # `concurrency` bounds the status calls in flight (the provider's limit), not the
        # workers: twice as many, so that a job's write to the table never holds a call's place.
        # One call at a time means one job at a time: a sweep whose calls come in a set order.
        gate = SweepGate(threading.BoundedSemaphore(self.concurrency), has_time)
        late: set[int] = set()
        with ThreadPoolExecutor(max_workers=2 * self.concurrency if self.concurrency > 1 else 1) as pool:
            checking: list[tuple[int, Future[Outcome]]] = []  # the round of pages read before this one
            while starts and (not checking or has_time()):
                reading: list[tuple[int, Future[Outcome]]] = []
                for shard, start in list(starts.items()):
                    page = self.store.due(shard, now, self.batch_size, start)
                    fresh = [job for job in page.jobs if (job.request_id, job.version) not in checked]
                    if len(fresh) < len(page.jobs):
                        self.metrics.count("StaleIndexCopies", len(page.jobs) - len(fresh))
                    checked.update((job.request_id, job.version) for job in fresh)
                    jobs = self._due_first(fresh, now)
                    reading += [(shard, pool.submit(self._checks.check, job, gate)) for job in jobs]
                    if page.next_page is None:
                        del starts[shard]
                    else:
                        starts[shard] = page.next_page
                self._tally(checking, outcomes, late)
                checking = reading
            self._tally(checking, outcomes, late)
        if outcomes[Outcome.FAILED] or outcomes[Outcome.HANDED_OFF] or outcomes[Outcome.FELL_BACK]:
            self._fill_line()  # generations ended: their places go to the next in line at once
        logger.info("sweep done", extra={k.value: v for k, v in outcomes.items()})
        return SweepReport(outcomes=outcomes, backlogged=sorted(late | set(starts)))

    @staticmethod
    def _tally(checks: list[tuple[int, Future[Outcome]]], outcomes: Counter[Outcome], late: set[int]) -> None:
        for shard, future in checks:
            outcome = future.result()
            if outcome is Outcome.LEFT_DUE:
                late.add(shard)
            outcomes[outcome] += 1

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
        fanned out, once the sweep leases are given back: each shard with a backlog goes on the
        sweep queue, for an invocation of its own.

        Only the shards whose sweep lease this invocation takes are swept (one sweep per shard at
        a time, so no job is checked by two at once); the others are being swept already."""
        wanted = list(range(self.shards)) if shards is None else list(shards)
        holder = uuid.uuid4().hex
        now = self.clock()
        lease_until = min(now + self.policy.sweep_lease, self.policy.claim_lease_until(now, seconds_left()))
        mine = [shard for shard in wanted if self.store.take_sweep(shard, holder, lease_until, now)]
        if len(mine) < len(wanted):
            logger.info("shards being swept by another invocation", extra={"shards": sorted(set(wanted) - set(mine))})
            self.metrics.count("SweepsSkipped", len(wanted) - len(mine))
        leases = _SweepLeases(self.store, mine, holder, self.policy.sweep_lease, self.clock, renewed_at=now)

        def has_time() -> bool:
            leases.keep()  # asked often while the sweep goes on: the leases live as long as it does
            return seconds_left() > SWEEP_RESERVE.total_seconds()

        backlogged: list[int] = []
        try:
            total = self._sweep_while(has_time, mine, backlogged)
        finally:
            for shard in mine:
                self.store.end_sweep(shard, holder)
        if backlogged:
            # After the leases are given back: an invocation sent a shard can sweep it at once.
            self.sweep_queue.fan_out(backlogged)
            self.metrics.count("SweepsFannedOut", len(backlogged))
            logger.info("due jobs left for more invocations", extra={"shards": backlogged})
        return total

    def _sweep_while(self, has_time: Callable[[], bool], shards: list[int], backlogged: list[int]) -> Counter[Outcome]:
        total: Counter[Outcome] = Counter()
        until = self.clock() + self.window
        checked: set[tuple[str, int]] = set()
        while shards:
            report = self.sweep(shards, has_time, checked)
            total.update(report.outcomes)
            if report.backlog:
                backlogged += report.backlogged
                return total
            if not self.window or not has_time() or report.outcomes[Outcome.ERRORED]:
                # After a failed check, no sweep again in this invocation: the same fault
                # (a store that cannot record the backoff) would make every sweep repeat it.
                return total
            soonest = min(filter(None, (self.store.next_due(shard) for shard in shards)), default=None)
            # Each wait moves time forward: a due time not after now (a stale index copy of a
            # job checked a moment ago) is looked at again a step later, never at once.
            now = self.clock()
            wake = max(soonest, now + RESWEEP_STEP) if soonest is not None else None
            if wake is None or wake > until:
                return total
            self.sleep((wake - now).total_seconds())
        return total


def _deadline(job: Job) -> datetime:
    return job.expired_at or datetime.max.replace(tzinfo=UTC)


@dataclass
class _SweepLeases:
    """An invocation's sweep leases, short and renewed while its sweep goes on, so that a poll
    that dies holds its shards a couple of minutes, not its whole timeout."""

    store: JobStore
    shards: list[int]
    holder: str
    lease: timedelta
    clock: Clock
    renewed_at: datetime
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self) -> None:
        now = self.clock()
        with self._lock:
            if now - self.renewed_at < self.lease / 2:
                return
            self.renewed_at = now
        for shard in self.shards:
            try:
                # Taken again by its holder, a lease is renewed (a shard taken over meanwhile is
                # the other's: its jobs' conditional writes keep two sweeps from moving one twice).
                self.store.take_sweep(shard, self.holder, now + self.lease, now)
            except Exception:
                logger.exception("a sweep lease could not be renewed", extra={"shard": shard})
