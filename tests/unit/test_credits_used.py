"""What a generation really cost: in the events, in a metric, and in the daily budget."""

import json
from datetime import timedelta

import pytest

from sora_relay.services.submit.messages import Done, InboundMessage

BODY = json.dumps({"request_id": "ad-1", "prompt": "a fox"})


@pytest.fixture
def submitted(world):
    world.daily_credit_budget = 100
    assert world.submitter.handle(InboundMessage("m-1", BODY)) == Done()  # quoted 30
    world.clock.advance(world.policy.poll_interval)
    return world


def day_spent(world) -> float:
    return world.ledger.spent[world.clock.now.date()]


def finish(world, **fields: object) -> None:
    world.provider.records = [world.record(status=2, video_url="https://cdn.geminigen.ai/v.mp4", **fields)]
    world.poller.sweep()
    world.archiver.archive_job("ad-1")


def test_used_credit_is_in_the_completed_event(submitted) -> None:
    finish(submitted, used_credit=25)
    [event] = submitted.publisher.finals
    assert (event.provider.estimated_credit, event.provider.used_credit) == (30, 25)


def test_used_credit_is_counted_in_its_metric_beside_the_estimate(submitted) -> None:
    finish(submitted, used_credit=25)
    assert submitted.metrics.counts["CreditsEstimated"] == 30
    assert submitted.metrics.counts["CreditsUsed"] == 25


def test_daily_budget_settles_on_the_credits_used(submitted) -> None:
    assert day_spent(submitted) == 30
    finish(submitted, used_credit=25)
    assert day_spent(submitted) == 25


def test_failed_generation_that_cost_nothing_gives_its_credits_back(submitted) -> None:
    submitted.provider.records = [submitted.record(status=3, error_code="POLICY", used_credit=0)]
    submitted.poller.sweep()
    assert day_spent(submitted) == 0
    [event] = submitted.publisher.finals
    assert event.provider.used_credit == 0


def test_used_credit_stated_again_is_settled_once(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2, used_credit=25)]  # no address yet
    submitted.poller.sweep()
    submitted.clock.advance(timedelta(minutes=1))
    finish(submitted, used_credit=25)
    assert day_spent(submitted) == 25
    assert submitted.metrics.counts["CreditsUsed"] == 25


def test_generation_that_states_no_used_credit_keeps_its_quote(submitted) -> None:
    finish(submitted)
    assert day_spent(submitted) == 30
    assert submitted.publisher.finals[0].provider.used_credit is None
    assert submitted.metrics.counts["CreditsUsed"] == 0


def test_budget_that_cannot_be_settled_leaves_the_job_going(submitted) -> None:
    def unavailable(*_: object, **__: object) -> None:
        raise ConnectionError("DynamoDB unreachable")

    submitted.ledger.count = unavailable
    finish(submitted, used_credit=25)
    assert submitted.publisher.finals[0].event.value == "video.completed"
    assert day_spent(submitted) == 30


def test_used_credit_without_a_budget_is_still_reported(world) -> None:
    world.submitter.handle(InboundMessage("m-1", BODY))
    world.clock.advance(world.policy.poll_interval)
    finish(world, used_credit=25)
    assert world.publisher.finals[0].provider.used_credit == 25
    assert world.ledger.spent == {}


def test_generation_timed_out_with_its_cost_stated_settles_it(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait)
    submitted.provider.records = [submitted.record(status=1, status_percentage=90, used_credit=10)]
    submitted.poller.sweep()
    [event] = submitted.publisher.finals
    assert (event.error.code, event.provider.used_credit) == ("timed_out", 10)
    assert day_spent(submitted) == 10
