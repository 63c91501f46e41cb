"""Never paid twice against the history as the provider really writes it: the prompt cut at a
";" or short, lean rows, renamed models; and never a generation made from another request's
inputs (docs/reliability.md)."""

import json
from datetime import datetime, timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import MaybeTaken, RetryLater
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.fakes import TakenThenLost, provider_words


class ContainerDied(BaseException):
    """The invocation ends where it stands."""


def message(body: dict[str, object], receive_count: int = 1) -> InboundMessage:
    return InboundMessage(f"m-{receive_count}", json.dumps(body), receive_count, lambda: 120.0)


def later(world, delta: timedelta = timedelta(minutes=5)) -> None:
    world.clock.advance(delta)


def twins_made_outside(world) -> None:
    """Two generations of the same prompt ("a fox") and settings, made outside the stack now."""
    for number in (1, 2):
        fields = {"input_text": "a fox", "model_name": "sora-2", "duration": 10}
        world.provider.history.append(
            world.record(uuid=f"outside_{number}", created_at=world.clock.now.isoformat(), **fields)
        )


@pytest.mark.parametrize(
    "prompt",
    [
        "Product shot; colour=red, studio light",
        "A long prompt about a lighthouse at dawn " * 10,
    ],
    ids=["cut at the semicolon", "tail cut off"],
)
def test_lost_answer_of_a_prompt_the_history_cuts_is_adopted_not_paid_again(world, prompt) -> None:
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": prompt}))
    later(world)
    assert world.submitter.handle(message({"request_id": "ad-1", "prompt": prompt}, 2)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.store.get("ad-1").provider.uuid == world.provider.history[0].uuid


@pytest.mark.parametrize(
    "settings",
    [{"resolution": "small", "aspect_ratio": "landscape"}, {"resolution": "large", "aspect_ratio": "portrait"}],
    ids=["small landscape", "large portrait"],
)
def test_lost_answer_whose_record_states_settings_in_the_providers_words_is_adopted(world, settings) -> None:
    world.provider.recorded_settings = provider_words  # a Sora `small` recorded as `720p`, `landscape` as `16:9`
    world.provider.outcomes = [TakenThenLost()]
    body = {"request_id": "ad-1", "prompt": "a fox", "model": "sora-2-pro", **settings}
    world.submitter.handle(message(body))
    later(world)
    assert world.submitter.handle(message(body, 2)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.store.get("ad-1").provider.uuid == world.provider.history[0].uuid


def test_record_stating_a_setting_in_words_no_catalogue_maps_is_read_again_never_ruled_out(world) -> None:
    world.provider.recorded_settings = lambda request: {"resolution": "HD-ish", "aspect_ratio": "wide"}
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    for count in (2, 3):
        later(world)
        world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, count))
    assert len(world.provider.submitted) == 1  # never sent again: it may be this request's
    assert world.store.get("ad-1").attempt_started_at is not None
    assert world.metrics.counts["HistoryAmbiguous"] >= 1


def test_record_stating_another_value_of_the_request_in_the_providers_words_is_not_adopted(world) -> None:
    world.provider.recorded_settings = provider_words
    world.submitter.handle(message({"request_id": "ad-2", "prompt": "a fox", "resolution": "large"}))
    world.store.owners.clear()  # as if made outside the stack: owned by no job
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox", "resolution": "small"}))
    later(world)
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox", "resolution": "small"}, 2))
    assert world.store.get("ad-1").provider.uuid != world.provider.history[0].uuid


def test_history_row_of_a_renamed_model_is_adopted(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    generation = world.provider.history[0]
    world.provider.history[0] = generation.model_copy(update={"model_name": "sora-2-video"})
    later(world)
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, 2))
    assert world.store.get("ad-1").state is JobState.SUBMITTED
    assert len(world.provider.submitted) == 1


def test_history_row_of_another_known_model_is_never_adopted(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    world.provider.history[0] = world.provider.history[0].model_copy(update={"model_name": "sora-2-pro"})
    later(world)
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, 2))
    assert len(world.provider.submitted) == 2


def test_twin_with_other_references_waits_while_the_first_attempt_is_in_doubt(world) -> None:
    first = {"request_id": "ad-1", "prompt": "Product shot; red", "files": ["s3://in/red.png"]}
    twin = {"request_id": "ad-2", "prompt": "Product shot; blue", "files": ["s3://in/blue.png"]}
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message(first))
    assert world.submitter.handle(message(twin)) == Done()  # it waits in line, not on the queue
    assert world.provider.submitted[-1].files == first["files"]
    waiting = world.store.get("ad-2")
    assert waiting.waiting
    assert "waiting for request ad-1" in waiting.held
    assert world.request_queue.resent == []


def test_twins_with_other_references_whose_answers_were_lost_each_get_their_own_video(world) -> None:
    first = {"request_id": "ad-1", "prompt": "Product shot; red", "files": ["s3://in/red.png"]}
    twin = {"request_id": "ad-2", "prompt": "Product shot; blue", "files": ["s3://in/blue.png"]}
    world.provider.outcomes = [TakenThenLost(), TakenThenLost()]
    world.submitter.handle(message(first))
    world.submitter.handle(message(twin))
    world.minute(6)
    made_from = {
        g.uuid: request.files for g, request in zip(world.provider.history, world.provider.submitted, strict=True)
    }
    assert len(world.provider.submitted) == 2
    for body in (first, twin):
        job = world.store.get(body["request_id"])
        assert job.state is JobState.SUBMITTED
        assert made_from[job.provider.uuid] == body["files"]


def test_twin_goes_as_soon_as_the_first_is_accepted(world) -> None:
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox; red"}))
    world.submitter.handle(message({"request_id": "ad-2", "prompt": "a fox; blue"}))
    assert len(world.provider.submitted) == 2


def test_twin_of_a_holder_that_died_before_sending_goes_once_its_claim_lapses(world) -> None:
    world.store.prompt_holders["a fox"] = "gone"  # its job was never written
    world.submitter.handle(message({"request_id": "ad-2", "prompt": "a fox"}))
    assert len(world.provider.submitted) == 1


def test_history_that_cannot_tell_two_candidates_apart_is_read_again_never_guessed(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    twins_made_outside(world)
    later(world)
    assert world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, 2)) == Done()
    job = world.store.get("ad-1")
    assert job.next_check_at == world.clock.now + world.policy.reconcile_delay  # the poller reads it again
    assert world.metrics.counts["HistoryAmbiguous"] == 1
    assert world.store.owners == {}
    assert len(world.provider.submitted) == 1


def test_history_that_never_tells_ends_the_job_within_the_bound_saying_why(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    twins_made_outside(world)
    later(world, world.policy.max_wait)
    assert world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, 2)) == Done()
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert "cannot tell which is its own" in event.error.message
    assert len(world.provider.submitted) == 1


def test_crashed_submission_of_a_request_held_past_the_maximum_wait_is_adopted(world) -> None:
    world.daily_credit_budget = 30
    world.ledger.quoted["sora-2:10:small"] = 30
    world.ledger.spent[world.clock.now.date()] = 30  # today's budget is spent: held
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    assert world.store.get("ad-1").held is not None
    later(world, world.policy.max_wait + timedelta(hours=1))
    world.ledger.spent.clear()  # room again
    world.provider.die_after_taking = ContainerDied()
    world.poller.tend_line()
    with pytest.raises(ContainerDied):
        world.deliver_starts()
    later(world, 3 * world.policy.claim_lease)
    world.poller.sweep()
    job = world.store.get("ad-1")
    assert (job.state, job.provider.uuid) == (JobState.SUBMITTED, world.provider.history[0].uuid)
    assert world.publisher.finals == []
    assert len(world.provider.submitted) == 1


def test_attempt_of_an_old_request_is_reconciled_however_old_the_request(world) -> None:
    world.provider.outcomes = [RetryLater("the provider answered HTTP 429")]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    later(world, world.policy.max_wait - timedelta(minutes=1))  # back in line after the 429
    world.poller.tend_line()  # its turn: started again
    world.provider.die_after_taking = ContainerDied()
    with pytest.raises(ContainerDied):
        world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}, 9))
    later(world, 3 * world.policy.claim_lease)
    assert world.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert world.store.get("ad-1").state is JobState.SUBMITTED


def test_account_refused_by_the_provider_waits_and_is_counted_for_the_alarm(world) -> None:
    world.provider.outcomes = [RetryLater("NOT_ENOUGH_CREDIT: top up", account_refused=True)]
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a fox"}))
    assert world.store.get("ad-1").waiting
    assert world.waiting.state.paused(world.clock.now)
    assert world.metrics.counts["ProviderAccountRefusals"] == 1
    assert world.publisher.finals == []


def test_policy_rejection_at_submission_ends_the_job_within_a_minute(world) -> None:
    world.submitter.handle(message({"request_id": "ad-1", "prompt": "a riot"}))
    rejected_at = world.clock.now  # the provider rejects it at once (status -2)
    world.provider.records = [world.record(status=-2, error_code="PUBLIC_ERROR_POLICY_VIOLATION")]
    world.clock.advance(world.policy.poll_interval)  # the first status check is due
    world.poller.sweep()
    [event] = world.publisher.finals
    assert event.error.code == "generation_failed"
    assert datetime.fromisoformat(event.occurred_at) - rejected_at <= timedelta(minutes=1)
