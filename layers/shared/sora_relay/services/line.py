"""The line: requests wait in the jobs table for one of the account's places, and start in order
of priority, then of arrival, as places come free (docs/line.md).

Waiting costs nothing: no provider call, no credit reservation, no SQS message. A place is
taken with a conditional write before a request is sent, and freed when the provider refused it
or its generation ended; a place whose holder died is found and freed by `heal`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, LineStore, Metrics, RequestQueue, StaleJob
from sora_relay.domain.request import Priority
from sora_relay.observability import logger

# Read past the places that are free: the index may still show a few jobs started a moment ago.
_HEAD_SLACK = 5


@dataclass(frozen=True)
class Line:
    store: JobStore
    places: LineStore
    request_queue: RequestQueue
    metrics: Metrics
    policy: Policy
    clock: Clock
    size: int  # MaxActiveGenerations: the places of the account the stack may hold

    def join(self, job: Job) -> Job:
        """The job waits in line, saved so; a job that goes back (refused) keeps its place in
        the line, which is its arrival. It ends if it has not started by the line's bound."""
        now = self.clock()
        waiting = job.joined_line(now, check_at=job.created_at + self.policy.max_line)
        self.store.save(waiting)
        return waiting

    def start_at_once(self, job: Job) -> Job | None:
        """The job started without waiting, when nobody waits and a place is free: only the
        place is written (the job's own next write, its attempt, records `placed_at`). None
        when it must join the line."""
        now = self.clock()
        places = self.places.places()
        limit = places.limit(self.size, now)
        if places.paused(now) or len(places.holders) >= limit or self.places.head(1):
            return None
        if not self.places.take_place(job.request_id, limit, now):
            return None
        self.metrics.count("LineStarts")
        return replace(job, placed_at=now)

    def fill(self, wanted: Job | None = None, lease_until: datetime | None = None) -> Job | None:
        """Start waiting requests while places are free: each is given a place and sent to the
        submit function, except `wanted` (a job its caller just put in line), which is returned
        started, with its caller's claim until `lease_until`, for the caller to submit itself.
        None when it did not start."""
        started = self._fill(wanted, lease_until)
        if wanted is None or started is not None:
            return started
        # Started meanwhile by another invocation's fill (requests arriving together): its
        # message is on its way, but the caller, here now, submits it (the message finds it
        # claimed, then submitted: a repeat).
        now = self.clock()
        job = self.store.get(wanted.request_id)
        if job is None or job.state is not JobState.RECEIVED or job.waiting or job.placed_at is None:
            return None
        if job.attempt_open or not job.lease_expired(now):
            return None
        claimed = job.leased(now, lease_until, check_at=lease_until or job.next_check_at)
        try:
            self.store.save(claimed)
        except StaleJob:
            return None
        return claimed

    def _fill(self, wanted: Job | None, lease_until: datetime | None) -> Job | None:
        now = self.clock()
        places = self.places.places()
        free = places.limit(self.size, now) - len(places.holders)
        if free <= 0 or places.paused(now):
            return None
        started_wanted = None
        head = self.places.head(free + _HEAD_SLACK)
        if wanted is not None and len(head) < free + _HEAD_SLACK and wanted.request_id not in head:
            # Every job the index shows will start: the one just put in line, which the index
            # may not show yet, goes after them.
            head.append(wanted.request_id)
        for request_id in head:
            if free == 0 or not self.places.take_place(request_id, places.limit(self.size, now), now):
                break
            mine = wanted is not None and request_id == wanted.request_id
            started = self._start(request_id, now, lease_until if mine else None)
            if started is None:
                continue
            free -= 1
            if mine:
                started_wanted = started
            else:
                self.request_queue.resend(request_id, started.claimed_request)
            self.metrics.count("LineStarts")
        return started_wanted

    def _start(self, request_id: str, now: datetime, lease_until: datetime | None) -> Job | None:
        """The job out of the line with the place just taken for it; None (its place given
        back, unless its job holds it) when it is no longer waiting: started by another
        invocation meanwhile, or canceled."""
        job = self.store.get(request_id)
        if job is not None and job.waiting and job.state is JobState.RECEIVED:
            # Looked at by a sweep should the message that starts it be lost, or its claim's holder die.
            check_at = lease_until or now + self.policy.start_watchdog
            started = job.started(now, lease_until, check_at=check_at)
            try:
                self.store.save(started)
                return started
            except StaleJob:
                job = self.store.get(request_id)
        if job is None or not job.holds_place:
            self.places.free_place(request_id)
        return None

    def free(self, job: Job) -> None:
        """The job's generation ended, or it was never sent: its place is free."""
        if job.holds_place:
            self.places.free_place(job.request_id)

    def free_and_fill(self, job: Job) -> None:
        """The job's place, if it held one, goes to the next in line at once."""
        if job.holds_place:
            self.free(job)
            self.fill()

    def refused(self, job: Job, reason: str, retry_after: float | None) -> Job:
        """The provider would not take the request now (no place free at the account, credit
        locked or out, a refused key, unreachable before it was sent): it goes back to the
        head of its line, and the line slows down: no more places than it holds now, for a
        while, and no start for a backoff that grows with each refusal in a row."""
        waiting = self.join(job)  # first: a place freed before would let a dying invocation lose it
        self.places.free_place(job.request_id)
        now = self.clock()
        places = self.places.places()
        delay = self.policy.retry_delay(places.refusals + 1, retry_after)
        self.places.slow_down(max(1, len(places.holders)), now + self.policy.learned_limit_hold, now + delay, reason)
        logger.warning("the provider refused a start; back to the head of the line", extra={"reason": reason})
        self.metrics.count("CapacityRefusals")
        return waiting

    def accepted(self) -> None:
        """A submission was taken: refusals in a row are over."""
        if self.places.places().refusals:
            self.places.speed_up()

    def heal(self) -> None:
        """When requests wait and every place is taken: free the places whose holders no longer
        hold them (an invocation died between taking a place and saving its job, or before
        freeing it). A holder whose claim is held, or whose job moved in the last
        `start_watchdog`, is left alone: it may be starting now."""
        now = self.clock()
        places = self.places.places()
        if len(places.holders) < places.limit(self.size, now) or not self.places.head(1):
            return  # a place is free, or nobody waits: a lost one harms no one yet
        for holder in places.holders:
            job = self.store.get(holder)
            if job is None or not (job.holds_place or _being_started(job, now, self.policy)):
                logger.warning("a place whose holder no longer holds it was freed", extra={"holder": holder})
                self.places.free_place(holder)
                self.metrics.count("PlacesRecovered")

    def report(self) -> None:
        """The line's length per priority, its oldest request's wait, and the places held
        against the limit, as metrics."""
        now = self.clock()
        oldest: datetime | None = None
        for priority in Priority:
            length, since = self.places.length(priority.value)
            self.metrics.count("LineLength", length, priority=priority.value)
            if since is not None and (oldest is None or since < oldest):
                oldest = since
        waited = (now - oldest).total_seconds() if oldest else 0
        self.metrics.count("OldestWaiting", waited, unit="Seconds")
        # The line's alarm: how near the oldest request is to ending unstarted.
        self.metrics.count("LineBoundUsed", 100 * waited / self.policy.max_line.total_seconds(), unit="Percent")
        places = self.places.places()
        self.metrics.count("PlacesHeld", len(places.holders))
        self.metrics.count("PlacesLimit", places.limit(self.size, now))


def _being_started(job: Job, now: datetime, policy: Policy) -> bool:
    """A received job an invocation may be starting: its claim held, or moved a moment ago."""
    recent = now - job.updated_at <= policy.start_watchdog
    return job.state is JobState.RECEIVED and (not job.lease_expired(now) or recent)
