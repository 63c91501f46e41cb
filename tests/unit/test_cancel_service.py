"""Cancel before paying: a request not yet submitted ends `canceled` and is never submitted."""

import json
from datetime import timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import RetryLater
from sora_relay.services.cancel import Canceled, NotCanceled
from sora_relay.services.submit.messages import Done, InboundMessage, Retry

REQUEST = {"request_id": "ad-1", "prompt": "a fox", "metadata": {"k": "v"}}


def deliver(world, body: dict | None = None, message_id: str = "m-1"):
    return world.submitter.handle(InboundMessage(message_id, json.dumps(body or REQUEST)))


def canceled_event(world):
    [event] = world.publisher.finals
    assert (event.event.value, event.error.code) == ("video.failed", "canceled")
    return event


def test_request_not_yet_read_is_canceled_and_its_message_later_submits_nothing(world) -> None:
    result = world.canceler.cancel("ad-1")
    assert isinstance(result, Canceled)
    assert result.before_read
    assert deliver(world) == Done()
    assert world.provider.submitted == []
    assert canceled_event(world).event_id == "ad-1:video.failed"


def test_late_message_of_a_request_canceled_before_it_was_read_is_not_a_different_body(world) -> None:
    world.canceler.cancel("ad-1")
    deliver(world)
    assert world.metrics.counts["DuplicateRequestsWithDifferentBody"] == 0


def test_request_held_by_the_budget_is_canceled_and_never_submitted(world) -> None:
    world.daily_credit_budget = 30
    deliver(world, {"request_id": "first", "prompt": "a wolf"})
    deliver(world)
    assert world.store.get("ad-1").held is not None
    result = world.canceler.cancel("ad-1")
    assert isinstance(result, Canceled)
    assert not result.before_read
    world.clock.advance(timedelta(minutes=15))
    world.daily_credit_budget = 1000
    assert deliver(world) == Done()  # the held message comes back
    assert [r.prompt for r in world.provider.submitted] == ["a wolf"]
    event = canceled_event(world)
    assert event.request.prompt == "a fox"
    assert event.metadata == {"k": "v"}


def test_request_back_in_line_after_a_429_is_canceled_and_never_started_again(world) -> None:
    world.provider.outcomes = [RetryLater("HTTP 429", retry_after=60)]
    assert deliver(world) == Done()
    assert world.store.get("ad-1").waiting
    assert isinstance(world.canceler.cancel("ad-1"), Canceled)
    world.clock.advance(timedelta(minutes=1))
    world.poller.tend_line()
    assert world.request_queue.resent == []
    assert len(world.provider.submitted) == 1  # the 429 only
    assert not world.store.get("ad-1").waiting
    canceled_event(world)


def test_canceled_request_is_settled_and_looked_at_by_no_sweep(world) -> None:
    world.canceler.cancel("ad-1")
    job = world.store.get("ad-1")
    assert (job.state, job.event_published, job.next_check_at) == (JobState.FAILED, True, None)


def test_cancel_whose_event_cannot_be_published_leaves_it_to_a_sweep(world) -> None:
    world.publisher.failures = [ConnectionError("SNS unreachable")]
    with pytest.raises(ConnectionError):
        world.canceler.cancel("ad-1")
    world.clock.advance(world.policy.publish_watchdog)
    world.poller.sweep()
    canceled_event(world)


def test_second_cancel_says_it_was_canceled_already_and_publishes_nothing_more(world) -> None:
    world.canceler.cancel("ad-1")
    again = world.canceler.cancel("ad-1")
    assert isinstance(again, Canceled)
    assert again.already
    assert len(world.publisher.published) == 1


def test_submitted_job_is_not_canceled_and_the_answer_says_what_was_spent(world) -> None:
    deliver(world)
    result = world.canceler.cancel("ad-1")
    assert isinstance(result, NotCanceled)
    assert "was submitted to the provider" in result.reason
    assert "sora_abc" in result.reason
    assert "30 credits estimated" in result.reason
    assert world.store.get("ad-1").state is JobState.SUBMITTED
    assert world.publisher.finals == []


def test_finished_job_is_not_canceled_and_the_answer_says_what_it_used(world) -> None:
    deliver(world)
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=3, error_code="POLICY", used_credit=0)]
    world.poller.sweep()
    result = world.canceler.cancel("ad-1")
    assert isinstance(result, NotCanceled)
    assert "already ended: video.failed (generation_failed)" in result.reason
    assert "0 credits used" in result.reason


def test_request_whose_answer_was_lost_is_not_canceled(world) -> None:
    world.provider.die_after_taking = SystemExit("the invocation died")
    with pytest.raises(SystemExit):
        deliver(world)
    result = world.canceler.cancel("ad-1")
    assert isinstance(result, NotCanceled)
    assert "may have taken it" in result.reason


def test_cancel_landing_while_the_request_is_being_prepared_wins_and_nothing_is_submitted(world) -> None:
    won = []
    world.files.meanwhile = lambda: won.append(world.canceler.cancel("ad-1"))
    assert isinstance(deliver(world, {**REQUEST, "files": ["s3://inputs/a.png"]}), Retry)
    assert isinstance(won[0], Canceled)
    assert world.provider.submitted == []
    assert deliver(world) == Done()
    assert world.provider.submitted == []
    canceled_event(world)


def test_reservation_of_a_request_canceled_while_it_was_prepared_is_given_back(world) -> None:
    world.daily_credit_budget = 100
    world.ledger.quoted["sora-2:10:small"] = 30
    world.files.meanwhile = lambda: world.canceler.cancel("ad-1")
    deliver(world, {**REQUEST, "files": ["s3://inputs/a.png"]})
    assert world.ledger.spent.get(world.clock.now.date(), 0) == 0


def test_submission_saved_first_makes_the_cancel_refuse(world) -> None:
    refused = []

    def cancel_meanwhile(request, files, timeout, extends=None):
        refused.append(world.canceler.cancel("ad-1"))
        return submit(request, files, timeout, extends)

    submit, world.provider.submit = world.provider.submit, cancel_meanwhile
    assert deliver(world) == Done()
    assert isinstance(refused[0], NotCanceled)
    assert world.store.get("ad-1").state is JobState.SUBMITTED
    assert world.publisher.finals == []
