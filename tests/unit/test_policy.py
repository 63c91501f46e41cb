from datetime import UTC, datetime, timedelta

import pytest

from sora_relay.domain.policy import (
    LONGEST_RETRY_DELAY,
    LONGEST_STATUS_INTERVAL,
    Observation,
    Policy,
    typical_generation_time,
)
from sora_relay.domain.request import VideoRequest

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TYPICAL = timedelta(seconds=150)


def delay(policy: Policy, age_s: float, latest: tuple[int, float], previous: tuple[int, float] | None) -> float:
    observed = Observation(latest[0], T0 + timedelta(seconds=latest[1]))
    before = Observation(previous[0], T0 + timedelta(seconds=previous[1])) if previous else None
    return policy.next_status_delay(
        age=timedelta(seconds=age_s), typical=TYPICAL, latest=observed, previous=before
    ).total_seconds()


def test_without_a_trend_the_next_call_aims_at_the_typical_finish() -> None:
    assert delay(Policy(), 30, (0, 30), None) == pytest.approx(120 * 1.05)


def test_with_a_trend_the_next_call_aims_at_the_estimated_finish() -> None:
    assert delay(Policy(), 90, (60, 90), (20, 30)) == pytest.approx(60 * 1.05)


def test_never_sooner_than_the_poll_interval() -> None:
    assert delay(Policy(), 140, (98, 140), (90, 110)) == 30


def test_never_later_than_the_longest_interval() -> None:
    assert delay(Policy(), 30, (1, 30), (0, 0)) == LONGEST_STATUS_INTERVAL.total_seconds()


def test_an_overdue_job_is_asked_more_often_than_it_drags_on() -> None:
    assert delay(Policy(), 400, (99, 400), None) == pytest.approx(250 / 4)


def test_a_long_poll_interval_is_never_shortened() -> None:
    policy = Policy(poll_interval=timedelta(minutes=10))
    assert delay(policy, 30, (90, 30), (10, 10)) == 600


def test_typical_time_grows_with_model_duration_and_resolution() -> None:
    pro_large = VideoRequest.model_validate_json(
        '{"prompt": "x", "model": "sora-2-pro", "duration": 15, "resolution": "large"}'
    )
    # The catalogue's 420 s for sora-2-pro at 15 s, x 1.5 for large.
    assert typical_generation_time(pro_large) == timedelta(seconds=630)
    veo_4s = VideoRequest.model_validate_json(
        '{"prompt": "x", "model": "veo-3.1-fast", "family": "veo", "duration": 4}'
    )
    assert typical_generation_time(veo_4s) == timedelta(seconds=37)  # 75 s at 8 s, in proportion
    assert typical_generation_time(None) == TYPICAL


def test_unanswered_status_calls_back_off_with_age() -> None:
    assert Policy().unreachable_delay(timedelta(seconds=10)) == timedelta(seconds=30)
    assert Policy().unreachable_delay(timedelta(hours=3)) == LONGEST_STATUS_INTERVAL


def test_retry_after_is_honoured_as_the_shortest_wait() -> None:
    assert Policy().retry_delay(1, 7) == timedelta(seconds=7)


def test_retries_back_off_beyond_a_short_retry_after() -> None:
    assert Policy().retry_delay(5, 7) == timedelta(seconds=80)


def test_retry_delay_never_exceeds_the_longest() -> None:
    assert Policy().retry_delay(30, None) == LONGEST_RETRY_DELAY
    assert Policy().retry_delay(1, 10**6) == LONGEST_RETRY_DELAY


def test_archive_key_is_prefix_and_request_id() -> None:
    assert Policy(archive_prefix="v/").archive_key("ad-1") == "v/ad-1.mp4"
