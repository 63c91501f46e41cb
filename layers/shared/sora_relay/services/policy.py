"""The stack's timing rules, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Between two status calls of an old job, at most this long (unless the interval is longer).
LONGEST_STATUS_INTERVAL = timedelta(minutes=5)
# SQS cannot hide a message for longer than 12 hours; retries never need that much.
LONGEST_RETRY_DELAY = timedelta(minutes=15)
FIRST_RETRY_DELAY = timedelta(seconds=5)


@dataclass(frozen=True)
class Policy:
    poll_interval: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(hours=2)
    # Longer than the submit function's timeout: a claim is only taken over once its holder is gone.
    claim_lease: timedelta = timedelta(minutes=10)
    # A submission starts only with this much of the invocation left: more than the provider
    # call's own timeout, so that a Lambda timeout never falls between its answer and the record.
    submit_time_margin: timedelta = timedelta(seconds=35)
    # Longer than the archive function's timeout: a hand-off not finished by then is sent again.
    handoff_watchdog: timedelta = timedelta(minutes=20)
    # A completed job not archived this long before its expired_at is at risk: a metric warns.
    archive_risk_window: timedelta = timedelta(hours=1)
    # A final event not confirmed as published by then is published again by a sweep.
    publish_watchdog: timedelta = timedelta(minutes=2)
    archive_prefix: str = "videos/"

    def next_status_delay(self, age: timedelta) -> timedelta:
        """Back off as the job ages: a tenth of its age, never sooner than the poll interval."""
        return max(self.poll_interval, min(age / 10, LONGEST_STATUS_INTERVAL))

    def retry_delay(self, receive_count: int, retry_after: float | None) -> timedelta:
        """How long a message waits before SQS delivers it again: backing off with each delivery,
        and never sooner than the provider's Retry-After, so a sustained 429 slows the stack down."""
        backoff: timedelta = FIRST_RETRY_DELAY * (2 ** max(receive_count - 1, 0))
        asked = timedelta(seconds=max(retry_after or 0, 0))
        return min(max(backoff, asked), LONGEST_RETRY_DELAY)

    def handoff_check(self, now: datetime, expired_at: datetime | None) -> datetime:
        """When a sweep checks that a hand-off was archived: after the watchdog period, or
        sooner, as the job enters its risk window before expired_at (never within a minute)."""
        check = now + self.handoff_watchdog
        if expired_at is not None:
            check = min(check, max(expired_at - self.archive_risk_window, now + timedelta(minutes=1)))
        return check

    def stale_claim_check(self, now: datetime) -> datetime:
        """When a sweep looks at a claim whose message may be gone (after SQS had its chances)."""
        return now + 2 * self.claim_lease

    def archive_key(self, request_id: str) -> str:
        return f"{self.archive_prefix}{request_id}.mp4"
