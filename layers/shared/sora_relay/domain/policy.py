"""The stack's timing rules, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.request import VideoRequest

# Between two status calls of an old job, at most this long (unless the interval is longer).
LONGEST_STATUS_INTERVAL = timedelta(minutes=5)
# SQS cannot hide a message for longer than 12 hours; retries never need that much.
LONGEST_RETRY_DELAY = timedelta(minutes=15)
FIRST_RETRY_DELAY = timedelta(seconds=5)
ARCHIVE_FIRST_RETRY_DELAY = timedelta(seconds=30)

# A guess of how much longer high resolutions take than a model's default (the provider
# publishes no figures); each job's own progress trend corrects it after the first status call.
_HIGH_RESOLUTIONS = {"large", "1080p"}
_HIGH_RESOLUTION_FACTOR = 1.5
_FALLBACK_SECONDS = 150  # no request, or a model no catalogue knows: as sora-2 at 10 s
# Aim a little after the estimated finish: a call that comes a moment too early costs another.
_AIM_PAST_FINISH = 1.05


def typical_generation_time(request: VideoRequest | None, catalogue: Catalogue | None = None) -> timedelta:
    """The catalogue's typical time for the request's model at its duration (where the catalogue
    knows it, else in proportion to its default duration's), and half as long again for a high
    resolution."""
    catalogue = catalogue or Catalogue.bundled()
    model = catalogue.model(request.model) if request is not None else None
    if request is None or model is None:
        return timedelta(seconds=_FALLBACK_SECONDS)
    seconds = float(model.typical_seconds)
    default_duration = catalogue.defaults(model).get("duration")
    if request.duration in model.typical_seconds_by_duration:
        seconds = float(model.typical_seconds_by_duration[request.duration])
    elif isinstance(default_duration, int) and request.duration:
        seconds *= max(request.duration / default_duration, 0.5)
    if request.resolution in _HIGH_RESOLUTIONS and catalogue.defaults(model).get("resolution") not in _HIGH_RESOLUTIONS:
        seconds *= _HIGH_RESOLUTION_FACTOR
    return timedelta(seconds=int(seconds))


@dataclass(frozen=True)
class Observation:
    """A status call's answer: the provider's progress, and when it said so."""

    progress: int
    at: datetime


@dataclass(frozen=True)
class Policy:
    poll_interval: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(hours=2)
    # The longest a claim is held; it ends sooner, with the claiming invocation's own deadline
    # (plus `lease_margin`), so that a claim whose holder died is taken over within minutes.
    claim_lease: timedelta = timedelta(minutes=10)
    lease_margin: timedelta = timedelta(seconds=10)
    # The provider call's whole-call deadline, and the time a submission needs left to start:
    # the call and the writes after it end before the invocation does.
    submit_call_timeout: timedelta = timedelta(seconds=30)
    submit_time_margin: timedelta = timedelta(seconds=35)
    # After a submission whose answer was lost, the account's history is read this much later
    # (time for it to show what was taken), and from this long before the attempt began (the
    # provider's clock is not ours).
    reconcile_delay: timedelta = timedelta(seconds=60)
    provider_clock_skew: timedelta = timedelta(minutes=2)
    # The longest one reading of the history may take (within an invocation's time left).
    history_read_time: timedelta = timedelta(seconds=30)
    # A hand-off not begun this soon is sent again (its message may have been lost with the
    # invocation that sent it); one begun is watched at its copy lease's end; then every
    # `handoff_watchdog`.
    handoff_first_check: timedelta = timedelta(minutes=2)
    handoff_watchdog: timedelta = timedelta(minutes=20)
    # A copy's lease, renewed while the copy runs: a copy whose invocation died is taken over
    # this soon after, however long the function may run.
    copy_lease: timedelta = timedelta(minutes=2)
    # A shard's sweep lease, renewed while its sweep goes on: a poll that died holds it this long.
    sweep_lease: timedelta = timedelta(minutes=2)
    # A completed job not archived this long before its expired_at is at risk: a metric warns.
    archive_risk_window: timedelta = timedelta(hours=1)
    # A final event not confirmed as published by then is published again by a sweep.
    publish_watchdog: timedelta = timedelta(minutes=2)
    # A finished video not copied this long after the provider had it ends (sooner at its
    # expired_at): the bound for a job whose expired_at is weeks ahead, or not stated.
    archive_window: timedelta = timedelta(hours=24)
    # Copy attempts in one archive invocation, and the pauses between them; an address that
    # refuses this many times in a row (its status read again for a fresh one each time) ends
    # the job as expired.
    archive_pauses: tuple[timedelta, ...] = (timedelta(seconds=5), timedelta(seconds=15))
    # After the maximum wait, the status is still asked for this long when it cannot be read,
    # so that a video finished just before the deadline is not thrown away.
    last_call_grace: timedelta = timedelta(minutes=10)
    # A thumbnail's copy gets at most this long, and only while the invocation has this much
    # more left: it is best effort and must never hold up the video's event.
    thumbnail_time: timedelta = timedelta(seconds=20)
    # How long a request may wait in line before it ends as timed_out (MaxLineHours), counted
    # from its arrival, whatever it waits for (a place, the budget, a twin, an earlier video).
    max_line: timedelta = timedelta(hours=48)
    # A model's breaker opens after this many failures in a row that were not the requests'
    # fault, and lets one probe request try it this long after it opened.
    breaker_failures: int = 5
    breaker_cool_down: timedelta = timedelta(minutes=10)
    # A request started out of the line not claimed by then is sent again by a sweep (its
    # message may be lost); a place whose holder has not moved in this long may be freed.
    start_watchdog: timedelta = timedelta(minutes=2)
    # After the provider said the account is full, the line holds no more places than it held
    # then, for this long (the account may run generations of its own; a bigger plan is noticed).
    learned_limit_hold: timedelta = timedelta(minutes=10)
    # A request whose reference files could not be read this many times ends as invalid_request.
    reference_attempts: int = 5
    archive_prefix: str = "videos/"

    def next_status_delay(
        self, *, age: timedelta, typical: timedelta, latest: Observation, previous: Observation | None
    ) -> timedelta:
        """When to ask again: at the moment the video should be done, from the job's progress
        trend (or, before there is one, from its typical generation time); never sooner than
        the poll interval, never later than the longest interval."""
        remaining = _remaining_by_trend(latest, previous)
        if remaining is None:
            remaining = typical - age
        # Overdue, it is asked often at first, then less as it drags on.
        delay = remaining * _AIM_PAST_FINISH if remaining > timedelta(0) else max(age - typical, timedelta(0)) / 4
        return max(self.poll_interval, min(delay, self.longest_status_interval))

    def status_check_at(self, now: datetime, delay: timedelta, deadline: datetime) -> datetime:
        """The next status call, after `delay`, but not after the job's deadline (where one last
        call decides), and never within the poll interval."""
        return max(min(now + delay, deadline), now + self.poll_interval)

    def unreachable_delay(self, age: timedelta) -> timedelta:
        """After a status call that got no answer: back off as the job ages."""
        return max(self.poll_interval, min(age / 10, self.longest_status_interval))

    @property
    def max_wait_minutes(self) -> int:
        return int(self.max_wait.total_seconds() // 60)

    @property
    def longest_status_interval(self) -> timedelta:
        return max(self.poll_interval, LONGEST_STATUS_INTERVAL)

    def retry_delay(self, receive_count: int, retry_after: float | None) -> timedelta:
        """How long a message waits before SQS delivers it again: backing off with each delivery,
        and never sooner than the provider's Retry-After, so a sustained 429 slows the stack down."""
        backoff: timedelta = FIRST_RETRY_DELAY * (2 ** max(receive_count - 1, 0))
        asked = timedelta(seconds=max(retry_after or 0, 0))
        return min(max(backoff, asked), LONGEST_RETRY_DELAY)

    def handoff_check(self, now: datetime, expired_at: datetime | None, *, since: datetime | None = None) -> datetime:
        """When a sweep checks that a hand-off was archived. A hand-off sent `since` then (the
        provider's finish) is watched soon and then less often, its wait doubling from
        `handoff_first_check` to the watchdog period (a hand-off lost with the invocation that
        sent it, or with the archive that took it, goes again within minutes, while a queue
        that is merely busy is not flooded); otherwise after the watchdog period. Sooner, as
        the job enters its risk window before expired_at (never within a minute)."""
        wait = self.handoff_watchdog
        if since is not None:
            wait = min(max(now - since, self.handoff_first_check), self.handoff_watchdog)
        check = now + wait
        if expired_at is not None:
            check = min(check, max(expired_at - self.archive_risk_window, now + timedelta(minutes=1)))
        return check

    def archive_deadline(self, completed_at: datetime, expired_at: datetime | None) -> datetime:
        """When a finished video not yet copied is given up: at its expired_at, or at the end of
        the archive window, whichever is first."""
        deadline = completed_at + self.archive_window
        return deadline if expired_at is None else min(deadline, expired_at)

    def archive_retry_delay(self, receive_count: int) -> timedelta:
        """How long a hand-off whose copy failed waits before it is delivered again."""
        backoff: timedelta = ARCHIVE_FIRST_RETRY_DELAY * (2 ** max(receive_count - 1, 0))
        return min(backoff, LONGEST_RETRY_DELAY)

    def claim_lease_until(self, now: datetime, seconds_left: float) -> datetime:
        """Until when a claim taken now is its invocation's: that invocation's deadline, and a margin."""
        held = min(self.claim_lease.total_seconds(), seconds_left + self.lease_margin.total_seconds())
        return now + timedelta(seconds=held)

    def stale_claim_check(self, now: datetime) -> datetime:
        """When a sweep looks at a claim whose message may be gone (after SQS had its chances)."""
        return now + 2 * self.claim_lease

    def archive_key(self, request_id: str) -> str:
        return f"{self.archive_prefix}{request_id}.mp4"

    def thumbnail_key(self, request_id: str) -> str:
        """Beside the video; the archive adds the extension its content type calls for."""
        return f"{self.archive_prefix}{request_id}.thumbnail"


def trend_start(progress: int, progress_at: datetime | None, start: datetime, *, moved: bool) -> Observation | None:
    """What a job's trend is measured from, at a status call: the last move of its progress
    when it moved again, or else its submission (progress 0 then)."""
    if moved:
        return Observation(progress, progress_at or start)
    return Observation(0, start) if progress > 0 else None


def _remaining_by_trend(latest: Observation, previous: Observation | None) -> timedelta | None:
    """Time to 100 % at the rate progress moved between the two observations."""
    if previous is None or latest.progress <= previous.progress or latest.at <= previous.at:
        return None
    rate = (latest.progress - previous.progress) / (latest.at - previous.at).total_seconds()
    return timedelta(seconds=(100 - latest.progress) / rate)
