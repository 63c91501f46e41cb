from datetime import timedelta

from sora_relay.services.policy import LONGEST_RETRY_DELAY, LONGEST_STATUS_INTERVAL, Policy


def test_young_job_is_checked_at_the_poll_interval() -> None:
    assert Policy().next_status_delay(timedelta(seconds=10)) == timedelta(seconds=30)


def test_old_job_is_checked_at_most_every_five_minutes() -> None:
    assert Policy().next_status_delay(timedelta(hours=3)) == LONGEST_STATUS_INTERVAL


def test_a_long_poll_interval_is_never_shortened() -> None:
    policy = Policy(poll_interval=timedelta(minutes=10))
    assert policy.next_status_delay(timedelta(hours=3)) == timedelta(minutes=10)


def test_retry_after_is_honoured_as_the_shortest_wait() -> None:
    assert Policy().retry_delay(1, 7) == timedelta(seconds=7)


def test_retries_back_off_beyond_a_short_retry_after() -> None:
    assert Policy().retry_delay(5, 7) == timedelta(seconds=80)


def test_retry_delay_never_exceeds_the_longest() -> None:
    assert Policy().retry_delay(30, None) == LONGEST_RETRY_DELAY
    assert Policy().retry_delay(1, 10**6) == LONGEST_RETRY_DELAY


def test_archive_key_is_prefix_and_request_id() -> None:
    assert Policy(archive_prefix="v/").archive_key("ad-1") == "v/ad-1.mp4"
