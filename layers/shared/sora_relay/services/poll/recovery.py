"""Jobs that stopped moving: a claim whose message is gone, a hand-off whose copy never came."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sora_relay.domain.events import ErrorCode, iso_utc
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import ArchiveQueue, Clock, JobStore, Metrics, RequestQueue
from sora_relay.observability import logger
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.submissions import Adopted, AwaitHistory, GaveUp, NotTaken, Submissions


@dataclass(frozen=True)
class Recovery:
    store: JobStore
    request_queue: RequestQueue
    archive_queue: ArchiveQueue
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    submissions: Submissions
    line: Line

    def claim(self, job: Job) -> Outcome:
        """A request not yet submitted: one waiting in line at the line's bound ends; one started
        but unclaimed long after (its message is gone, or in the dead-letter queue) goes back on
        the queue, until the maximum wait from its start. One whose attempt may have been taken
        is first looked for in the history, however old."""
        now = self.clock()
        if not job.lease_expired(now):
            assert job.lease_until is not None
            self.store.save(job.check_again(now, self.policy.stale_claim_check(job.lease_until)))
            return Outcome.SKIPPED
        if job.attempt_open:
            return self._attempt(job)
        if job.placed_at is not None and job.age(now) > self.policy.max_wait:
            minutes = self.policy.max_wait_minutes
            message = f"the provider did not accept the request within {minutes} minutes of its start"
            self.finisher.fail(job, ErrorCode.TIMED_OUT, message, now)
            self.line.free_and_fill(job)
            return Outcome.FAILED
        if job.placed_at is None and now >= job.created_at + self.policy.max_line:
            return self._never_started(job, now)
        if job.waiting:
            self.store.save(job.check_again(now, job.created_at + self.policy.max_line))
            return Outcome.SKIPPED
        return self._requeue(job)

    def _never_started(self, job: Job, now: datetime) -> Outcome:
        hours = f"{self.policy.max_line.total_seconds() / 3600:g}"
        message = (
            f"never started: waited {hours} hours in line for one of the {self.line.size} places this stack"
            " may hold at the provider (MaxActiveGenerations); nothing was submitted and nothing was charged"
        )
        self.finisher.fail(job, ErrorCode.TIMED_OUT, message, now)
        return Outcome.FAILED

    def _attempt(self, job: Job) -> Outcome:
        """An attempt whose submitter is gone: what the history shows decides, here and now
        (its bound runs from the attempt, not from the request's arrival)."""
        # A check starts with at least the sweep's reserve left: time for one reading.
        within = self.policy.history_read_time.total_seconds()
        match self.submissions.find_lost(job, receive_count=1, within=within):
            case Adopted():
                return Outcome.RUNNING
            case GaveUp():
                self.line.free_and_fill(job)
                return Outcome.FAILED
            case AwaitHistory(reason, delay):
                logger.info("the history cannot tell yet whether an attempt was taken", extra={"reason": reason})
                now = self.clock()
                self.store.save(job.check_again(now, now + delay))
                return Outcome.SKIPPED
            case NotTaken(cleared):
                return self._requeue(cleared)

    def _requeue(self, job: Job) -> Outcome:
        now = self.clock()
        self.store.save(job.check_again(now, self.policy.stale_claim_check(now)))
        self.request_queue.resend(job.request_id, job.claimed_request)
        logger.warning("unsubmitted claim put back on the request queue")
        self.metrics.count("ClaimsRequeued")
        return Outcome.REQUEUED

    def handoff(self, job: Job) -> Outcome:
        """A completed job still due was not archived in time: hand it off again, or end it."""
        now = self.clock()
        if not job.lease_expired(now):
            assert job.lease_until is not None
            # A copy is in flight: a new version now would make its save fail.
            self.store.save(job.check_again(now, job.lease_until))
            return Outcome.SKIPPED
        if self.finisher.end_if_too_late_to_copy(job, now):
            return Outcome.FAILED
        expired_at = job.expired_at
        if expired_at is not None and expired_at - now <= self.policy.archive_risk_window:
            logger.error("video not yet archived close to its expired_at", extra={"expired_at": iso_utc(expired_at)})
            self.metrics.count("ArchivesAtRisk")
        self.store.save(job.check_again(now, self.policy.handoff_check(now, expired_at, since=job.completed_at)))
        self.archive_queue.enqueue(job.request_id)
        logger.warning("archive hand-off sent again")
        return Outcome.HANDED_OFF
