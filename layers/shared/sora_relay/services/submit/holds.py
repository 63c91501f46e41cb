"""Requests held back before submission: by the day's credit budget, behind a twin whose attempt
is open, or until the video they extend is finished. A held request gives its place (if it had
one) to the next in line, and comes back as a new message after its delay."""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import ErrorCode
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, Metrics, RequestQueue, StaleJob
from sora_relay.observability import logger
from sora_relay.services.budget import NoRoom
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.submit.messages import Done, Retry, SubmitResult


@dataclass(frozen=True)
class Holds:
    store: JobStore
    finisher: Finisher
    request_queue: RequestQueue
    metrics: Metrics
    policy: Policy
    clock: Clock
    line: Line

    def hold(self, job: Job, no_room: NoRoom, *, held_for: str = "budget") -> SubmitResult:
        """The day's credit budget has no room for it, a twin's attempt is open, or the video it
        extends is not finished: the request waits on the queue, its job saying why (`held`),
        until it may go or `max_hold` has passed; its place (if it had one) goes to the next.

        It goes back as a new message under its request_id rather than staying hidden: each
        receive of a held message would count towards the queue's dead-letter limit."""
        request = job.claimed_request
        now = self.clock()
        if not no_room.ever:
            self.finisher.fail(job, ErrorCode.TIMED_OUT, f"not submitted: {no_room.reason}", now)
            self.line.free_and_fill(job)
            return Done()
        if self.policy.held_too_long(job.created_at, now):
            self.finisher.end_held(job, no_room.reason, now)
            self.line.free_and_fill(job)
            return Done()
        # Looked at again by a sweep should the message be lost, as any released claim.
        next_check_at = self.policy.stale_claim_check(now + no_room.delay)
        held = job.held_back(now, no_room.reason, check_at=next_check_at)
        try:
            self.store.save(held)
        except StaleJob:
            return Retry(self.policy.claim_lease, "another invocation took the claim first")
        self.line.free_and_fill(job)
        self.request_queue.resend(job.request_id, request, no_room.delay)
        logger.info("held before submission", extra={"reason": no_room.reason})
        # Counted apart: the budget's alarm watches only its own.
        if held_for == "twin":
            self.metrics.count("TwinsHeld")
        elif held_for == "extension":
            self.metrics.count("ExtensionsWaiting")
        else:
            self.metrics.count("RequestsHeld")
        return Done()
