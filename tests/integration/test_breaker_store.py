"""Each model's breaker in the jobs table, through boto3 against moto: failures counted by any
container, opened at the threshold, one probe at a time after the cool-down, closed by a video."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from sora_relay.adapters.breakers import DynamoBreakers
from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.domain.ports import BreakerState

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
COOL_DOWN = timedelta(minutes=10)


@pytest.fixture
def breakers(stack) -> DynamoBreakers:
    return DynamoBreakers(boto3.client("dynamodb"), stack.table_name)


def _fail(breakers: DynamoBreakers, times: int, at: datetime = NOW) -> BreakerState:
    state = BreakerState()
    for _ in range(times):
        state = breakers.count_failure("veo-3.1", at, threshold=5)
    return state


def test_failures_count_up_and_open_the_breaker_at_the_threshold(breakers) -> None:
    assert _fail(breakers, 4) == BreakerState(failures=4)
    assert breakers.read("veo-3.1") == BreakerState(failures=4)
    assert _fail(breakers, 1) == BreakerState(failures=5, opened_at=NOW)
    assert breakers.read("veo-3.1") == BreakerState(failures=5, opened_at=NOW)
    assert breakers.read("kling-video-2-6") == BreakerState()


def test_one_probe_at_a_time_once_cooled_down(breakers) -> None:
    _fail(breakers, 5)
    later = NOW + COOL_DOWN
    assert not breakers.take_probe("veo-3.1", "r-1", NOW - timedelta(seconds=1), NOW, NOW + COOL_DOWN)
    assert breakers.take_probe("veo-3.1", "r-1", later - COOL_DOWN, later, later + COOL_DOWN)
    assert breakers.take_probe("veo-3.1", "r-1", later - COOL_DOWN, later, later + COOL_DOWN)  # its own again
    assert not breakers.take_probe("veo-3.1", "r-2", later - COOL_DOWN, later, later + COOL_DOWN)
    lapsed = later + COOL_DOWN
    assert breakers.take_probe("veo-3.1", "r-2", lapsed - COOL_DOWN, lapsed, lapsed + COOL_DOWN)


def test_a_failed_probe_opens_the_breaker_again_and_ends_the_probe(breakers) -> None:
    _fail(breakers, 5)
    later = NOW + COOL_DOWN
    breakers.take_probe("veo-3.1", "r-1", later - COOL_DOWN, later, later + COOL_DOWN)
    assert _fail(breakers, 1, at=later) == BreakerState(failures=6, opened_at=later)
    assert breakers.read("veo-3.1").probe is None


def test_a_video_closes_the_breaker(breakers) -> None:
    _fail(breakers, 5)
    breakers.reset("veo-3.1")
    assert breakers.read("veo-3.1") == BreakerState()
    assert breakers.states() == {}


def test_people_see_every_model_with_failures_and_no_breaker_is_a_job(breakers, stack) -> None:
    _fail(breakers, 2)
    assert breakers.states() == {"veo-3.1": BreakerState(failures=2)}
    store = DynamoJobStore(boto3.client("dynamodb"), stack.table_name, shards=4, finished_ttl=timedelta(days=30))
    assert list(store.scan()) == []
