"""The line: requests wait in the jobs table, and start in order of priority, then of arrival,
as places come free and nothing else holds them back (docs/line.md).

Every wait is a wait in this line: no place free, the day's credit budget spent, a twin's
attempt open, an earlier video not finished, the provider's pause. Waiting costs nothing: no
provider call, no credit reservation, no SQS message. A request starts one way: `fill` (or,
when nobody waits, `start` at once) takes a place for it, named for it and the moment it was
taken, with a conditional write; the place is freed when the provider refused the request or
its generation ended, and a place whose holder died is found and freed by `heal`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from sora_relay.domain.events import AttemptSummary
from sora_relay.domain.jobs import Job, JobState, place_name
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, LineStore, Metrics, RequestQueue, StaleJob, holder_of
from sora_relay.domain.request import Priority, VideoRequest
from sora_relay.observability import logger
from sora_relay.services.waits import Wait, WaitFor, Waits

# Read past the places that are free: the index may still show a few jobs started a moment ago,
# and twins or extensions that wait alone are passed over.
_HEAD_SLACK = 5
# The most of the line one fill reads: jobs waiting alone (twins, extensions) beyond it wait
# for the next fill.
_MOST_READ = 100


@dataclass(frozen=True)
class Line:
    store: JobStore
    places: LineStore
    request_queue: RequestQueue
    metrics: Metrics
    policy: Policy
    clock: Clock
    size: int  # MaxActiveGenerations: the places of the account the stack may hold
    waits: Waits

    def join(self, job: Job, wait: Wait | None = None) -> Job:
        """The job waits in line, saved so (and why, when it is not for a place); a job that goes
        back keeps its place in the line, which is its arrival. It ends if it has not started
        by the line's bound, counted from its arrival."""
        now = self.clock()
        waiting = job.joined_line(now, check_at=self._bound(job), reason=wait.reason if wait else None)
        self.store.save(waiting)
        if wait is None:
            return waiting
        # Counted apart: the budget's alarm watches only its own.
        if wait.kind is WaitFor.BUDGET:
            self.metrics.count("RequestsHeld")
        elif wait.kind is WaitFor.TWIN:
            self.metrics.count("TwinsHeld")
        elif wait.kind is WaitFor.BREAKER:
            self.metrics.count("BreakerWaits")
        else:
            self.metrics.count("ExtensionsWaiting")
        return waiting

    def fall_back(self, job: Job, request: VideoRequest, attempt: AttemptSummary) -> Job:
        """The job's model failed at no cost: its next model's request joins the line at the
        job's arrival (ahead of later requests), and the place it held goes to the next in line
        with the caller's fill."""
        moved = job.fell_back(self.clock(), request, attempt, check_at=self._bound(job))
        self.store.save(moved)  # first: a place freed before would let a dying invocation lose it
        self.free(job)
        return moved

    def _bound(self, job: Job) -> datetime:
        """When a waiting job ends unstarted: the line's bound, from its arrival."""
        return job.created_at + self.policy.max_line

    def start(self, job: Job, lease_until: datetime | None) -> Job | None:
        """The job started, holding a place: at once when nobody waits, a place is free and
        nothing holds it back; else it joins the line and the line is filled, which may start
        it in its turn. Returned started, with its caller's claim until `lease_until`, for the
        caller to submit; None when it waits (or moved meanwhile: canceled, say)."""
        now = self.clock()
        wait = self.waits.reason(job, now)
        if wait is None:
            places = self.places.places()
            limit = places.limit(self.size, now)
            place = place_name(job.request_id, now)
            free = not places.paused(now) and len(places.holders) < limit
            if free and not self.places.head(1) and self.places.take_place(place, limit, now):
                self.metrics.count("LineStarts")
                return self._start(job, place, now, lease_until)
        return self.fill(wanted=self.join(job, wait), lease_until=lease_until)

    def wait(self, job: Job, wait: Wait) -> Job:
        """A started job may not go on (its twin's attempt opened, the budget's room was taken
        meanwhile, its earlier video is not finished): back to its place in the line, saying
        why, its place given to the next."""
        waiting = self.join(job, wait)
        self._free(job)
        self.fill()
        return waiting

    def fill(self, wanted: Job | None = None, lease_until: datetime | None = None) -> Job | None:
        """Start waiting requests while places are free, in the line's order: each is given a
        place and sent to the submit function, except `wanted` (a job its caller just put in
        line), which is returned started, with its caller's claim until `lease_until`, for the
        caller to submit itself. A request held back by the budget holds the line behind it; a
        twin or an extension waiting alone is passed over. None when `wanted` did not start."""
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
        head = self.places.head(min(free + _HEAD_SLACK, _MOST_READ))
        if wanted is not None and len(head) < free + _HEAD_SLACK and wanted.request_id not in head:
            # Every job the index shows comes first: the one just put in line, which the index
            # may not show yet, goes after them.
            head.append(wanted.request_id)
        held_by = None
        for request_id in head:
            if free == 0:
                break
            job = self.store.get(request_id)
            if job is None or not job.waiting or job.state is not JobState.RECEIVED:
                continue  # started by another invocation meanwhile, or ended
            wait = self.waits.reason(job, now)
            if wait is not None:
                self._note(job, wait, now)
                if wait.holds_the_line:
                    held_by = f"request {request_id} at the head of the line waits: {wait.reason}"
                    break
                continue
            place = place_name(request_id, now)
            if not self.places.take_place(place, places.limit(self.size, now), now):
                break
            mine = wanted is not None and request_id == wanted.request_id
            started = self._start(job, place, now, lease_until if mine else None)
            if started is None:
                continue
            free -= 1
            self.metrics.count("LineStarts")
            if mine:
                started_wanted = started
            else:
                self.request_queue.resend(request_id, started.claimed_request)
        if held_by != places.held_by:
            self.places.hold_starts(held_by)
        return started_wanted

    def _note(self, job: Job, wait: Wait, now: datetime) -> None:
        """A waiting job says why it waits (written only when that changes)."""
        if job.held == wait.reason:
            return
        # Moved meanwhile: whoever moved it says how it stands.
        with contextlib.suppress(StaleJob):
            self.store.save(job.joined_line(now, check_at=self._bound(job), reason=wait.reason))

    def _start(self, job: Job, place: str, now: datetime, lease_until: datetime | None) -> Job | None:
        """The one way a request starts: the place just taken for it recorded on its job
        (`placed_at`, which names the place), conditionally on the version read. None (the
        place given back) when the job moved meanwhile: started by another invocation, or
        canceled."""
        # Looked at by a sweep should the message that starts it be lost, or its claim's holder die.
        check_at = lease_until or now + self.policy.start_watchdog
        try:
            started = job.started(now, lease_until, check_at=check_at)
            self.store.save(started)
            return started
        except StaleJob:
            self.places.free_place(place)
            return None

    def _free(self, job: Job) -> None:
        if job.place is not None:
            self.places.free_place(job.place)

    def free(self, job: Job) -> None:
        """The job's generation ended, or it was never sent: its place (if it held one) is free."""
        if job.holds_place:
            self._free(job)

    def free_and_fill(self, job: Job) -> None:
        """The job's place, if it held one, goes to the next in line at once."""
        if job.holds_place:
            self._free(job)
            self.fill()

    def refused(self, job: Job, reason: str, retry_after: float | None, *, account: bool = False) -> Job:
        """The provider would not take the request now (no place free at the account, credit
        locked or out, a refused key, unreachable before it was sent): it goes back to the
        head of its line, and the line slows down for a backoff that grows with each refusal
        in a row; for a full account (not an account refusal, which says nothing of places)
        with no more places than it holds now, for a while."""
        waiting = self.join(job)  # first: a place freed before would let a dying invocation lose it
        self._free(job)  # this place only: one taken for it meanwhile stays its
        now = self.clock()
        places = self.places.places()
        delay = self.policy.retry_delay(places.refusals + 1, retry_after)
        learned = self.size if account else max(1, len(places.holders))
        self.places.slow_down(learned, now + self.policy.learned_limit_hold, now + delay, reason)
        logger.warning("the provider refused a start; back to the head of the line", extra={"reason": reason})
        self.metrics.count("CapacityRefusals")
        return waiting

    def accepted(self) -> None:
        """A submission was taken: refusals in a row are over (unless one came meanwhile)."""
        places = self.places.places()
        if places.refusals:
            self.places.speed_up(places.refusals)

    def heal(self) -> None:
        """When requests wait and every place is taken: free the places whose holders no longer
        hold them (an invocation died between taking a place and saving its job, or before
        freeing it; a place the job has since given up). A holder whose claim is held, or
        whose job moved in the last `start_watchdog`, is left alone: it may be starting now."""
        now = self.clock()
        places = self.places.places()
        if len(places.holders) < places.limit(self.size, now) or not self.places.head(1):
            return  # a place is free, or nobody waits: a lost one harms no one yet
        for place in places.holders:
            job = self.store.get(holder_of(place))
            if job is None or not (_holds(job, place) or _being_started(job, now, self.policy)):
                logger.warning("a place whose holder no longer holds it was freed", extra={"holder": place})
                self.places.free_place(place)
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


def _holds(job: Job, place: str) -> bool:
    """Whether the job holds this very place (a place named for the bare request_id, from
    before places were named for their moment, is its holder's while it holds one)."""
    return job.holds_place and (job.place == place or "@" not in place)


def _being_started(job: Job, now: datetime, policy: Policy) -> bool:
    """A received job an invocation may be starting: its claim held, or moved a moment ago."""
    recent = now - job.updated_at <= policy.start_watchdog
    return job.state is JobState.RECEIVED and (not job.lease_expired(now) or recent)
