"""One request, at most one paid generation: answers lost after the provider acted, and
invocations that die with the answer in hand, are resolved from the account's history."""

import json
import threading
import time
from datetime import timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import MaybeTaken, ProviderUnavailable
from sora_relay.services.submit.messages import Done, InboundMessage, Retry

from ..support.fakes import InFlight, TakenThenLost


def message(body: dict[str, object], receive_count: int = 1, seconds_left: float = 120.0) -> InboundMessage:
    return InboundMessage(
        message_id=f"m-{receive_count}",
        body=json.dumps(body),
        receive_count=receive_count,
        seconds_left=lambda: seconds_left,
    )


REQUEST = {"request_id": "ad-1", "prompt": "a fox in the snow"}
TWIN = {"request_id": "ad-2", "prompt": "a fox in the snow"}


class ContainerDied(BaseException):
    """The invocation ends where it stands (a crash, an out-of-memory kill, a timeout)."""


def later(world, delta: timedelta = timedelta(minutes=5)) -> None:
    world.clock.advance(delta)


def test_lost_answer_waits_for_the_history_instead_of_submitting_again(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    assert world.submitter.handle(message(REQUEST)) == Done()  # the poller reads the history, not a message
    job = world.store.get("ad-1")
    assert job.attempt_started_at == world.clock.now
    assert job.next_check_at == world.clock.now + world.policy.reconcile_delay
    assert len(world.provider.submitted) == 1


def test_lost_answer_of_a_taken_submission_is_adopted_not_paid_again(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message(REQUEST))
    later(world)
    assert world.submitter.handle(message(REQUEST, receive_count=2)) == Done()
    assert len(world.provider.submitted) == 1
    job = world.store.get("ad-1")
    assert job.state is JobState.SUBMITTED
    assert job.provider.uuid == world.provider.history[0].uuid
    assert job.attempt_started_at is None


def test_adopted_job_counts_from_its_attempt(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    started = world.clock.now
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert world.store.get("ad-1").submitted_at == started
    assert world.metrics.counts["SubmissionsAdopted"] == 1


def test_hang_up_after_taking_is_adopted_like_a_gateway_error(world) -> None:
    world.provider.outcomes = [TakenThenLost(MaybeTaken("the submission was sent but its answer was lost"))]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert len(world.provider.submitted) == 1
    assert world.store.get("ad-1").state is JobState.SUBMITTED


def test_invocation_dying_after_the_provider_took_it_is_adopted_by_the_next(world) -> None:
    world.provider.die_after_taking = ContainerDied()
    with pytest.raises(ContainerDied):
        world.submitter.handle(message(REQUEST))
    later(world)
    assert world.submitter.handle(message(REQUEST, receive_count=2)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.store.get("ad-1").provider.uuid == world.provider.history[0].uuid


def test_attempt_the_history_shows_was_not_taken_is_submitted_again(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    assert world.submitter.handle(message(REQUEST, receive_count=2)) == Done()
    assert len(world.provider.submitted) == 2
    assert len(world.provider.history) == 1
    assert world.metrics.counts["AttemptsNotTaken"] == 1


def test_unreadable_history_means_waiting_never_submitting(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.provider.history_failures = [ProviderUnavailable("history list answered HTTP 503")] * 3
    world.submitter.handle(message(REQUEST))
    for count in (2, 3, 4):
        later(world)
        assert world.submitter.handle(message(REQUEST, receive_count=count)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.store.get("ad-1").attempt_started_at is not None


def test_history_is_not_read_before_it_can_show_the_attempt(world) -> None:
    world.provider.outcomes = [TakenThenLost()]
    world.submitter.handle(message(REQUEST))
    world.clock.advance(world.policy.reconcile_delay / 2)
    result = world.submitter.handle(message(REQUEST, receive_count=2))
    assert result == Done()
    assert world.provider.history_reads == 0
    assert len(world.provider.submitted) == 1


def test_identical_requests_whose_answers_were_lost_get_a_generation_each(world) -> None:
    world.provider.outcomes = [TakenThenLost(), TakenThenLost()]
    world.submitter.handle(message(REQUEST))
    world.submitter.handle(message(TWIN))  # waits in line while its twin's attempt is open
    world.minute(6)
    assert len(world.provider.submitted) == 2
    uuids = {world.store.get(request_id).provider.uuid for request_id in ("ad-1", "ad-2")}
    assert uuids == {generation.uuid for generation in world.provider.history}
    assert len(uuids) == 2


def test_generation_of_another_job_is_never_adopted(world) -> None:
    world.submitter.handle(message(TWIN))  # accepted: its generation is in the history, and its own
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert world.store.get("ad-1").provider.uuid != world.store.get("ad-2").provider.uuid
    assert len(world.provider.history) == 2


def test_generation_of_another_prompt_is_never_adopted(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    world.submitter.handle(message({"request_id": "ad-3", "prompt": "a wolf in the snow"}))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert len(world.provider.history) == 2
    assert world.store.get("ad-1").provider.uuid != world.store.get("ad-3").provider.uuid


def test_generation_of_other_settings_is_never_adopted(world) -> None:
    world.submitter.handle(message({**TWIN, "duration": 15}))
    world.store.owners.clear()  # as if made outside the stack: owned by no job
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert len(world.provider.history) == 2
    assert world.provider.history[0].uuid in world.provider.status_calls  # its settings read in full


def test_generation_older_than_the_attempt_is_never_adopted(world) -> None:
    world.submitter.handle(message(TWIN))
    world.store.owners.clear()  # as if made outside the stack: owned by no job
    later(world, timedelta(hours=1))
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert len(world.provider.history) == 2


def test_accepted_generation_adopted_first_by_an_identical_request_is_not_this_jobs(world) -> None:
    world.store.owners["sora_abc"] = "ad-2"  # its twin found it first, looking for its own
    assert world.submitter.handle(message(REQUEST)) == Done()
    job = world.store.get("ad-1")
    assert (job.state, job.attempt_open) == (JobState.RECEIVED, True)  # the poller looks for its own


def test_claim_ends_with_the_invocations_own_deadline(world) -> None:
    world.provider.die_after_taking = ContainerDied()
    with pytest.raises(ContainerDied):
        world.submitter.handle(message(REQUEST, seconds_left=100))
    job = world.store.get("ad-1")
    assert job.lease_until == world.clock.now + timedelta(seconds=100) + world.policy.lease_margin
    assert job.next_check_at == job.lease_until


def test_provider_call_ends_before_the_invocation_does(world) -> None:
    world.submitter.handle(message(REQUEST, seconds_left=world.policy.submit_time_margin.total_seconds()))
    [timeout] = world.provider.timeouts
    assert timeout < world.policy.submit_time_margin.total_seconds()


def test_reservation_of_a_lost_answer_is_kept_until_the_history_is_read(world) -> None:
    world.daily_credit_budget = 1000
    world.ledger.quoted["sora-2:10:small"] = 30
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    assert world.ledger.spent[world.clock.now.date()] == 30


def test_reservation_of_an_attempt_not_taken_is_given_back(world) -> None:
    world.daily_credit_budget = 1000
    world.ledger.quoted["sora-2:10:small"] = 30
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert world.ledger.spent[world.clock.now.date()] == 30  # the second attempt's, settled


def test_requests_with_reference_files_hold_a_bounded_number_at_once(world) -> None:
    submissions = InFlight(pause=0.02)
    world.provider.submit = submissions.around(world.provider.submit)
    submitter = world.submitter
    bodies = [
        {
            "request_id": f"f-{i}",
            "prompt": f"a kite, scene {i}",
            "model": "kling-video-2-6",
            "ref_images": ["s3://in/a.png"] * 4,
        }
        for i in range(10)
    ]
    threads = [threading.Thread(target=submitter.handle, args=(message(body),)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert submissions.most == 2
    assert len(world.provider.submitted) == 10


def test_claim_of_an_invocation_that_died_is_reconciled_by_the_poller_within_minutes(world) -> None:
    world.provider.die_after_taking = ContainerDied()
    with pytest.raises(ContainerDied):
        world.submitter.handle(message(REQUEST, seconds_left=120))
    world.clock.advance(timedelta(seconds=131))
    world.poller.sweep()
    job = world.store.get("ad-1")
    assert (job.state, job.provider.uuid) == (JobState.SUBMITTED, world.provider.history[0].uuid)
    assert world.request_queue.resent == []


def test_claim_of_an_attempt_not_taken_is_put_back_on_the_queue(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST, seconds_left=120))
    world.clock.advance(world.policy.reconcile_delay + 2 * world.policy.claim_lease)
    world.poller.sweep()
    assert [request_id for request_id, _ in world.request_queue.resent] == ["ad-1"]
    assert world.store.get("ad-1").attempt_started_at is None


def test_attempt_never_reconciled_ends_timed_out_saying_why(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.provider.history_failures = [ProviderUnavailable("history list answered HTTP 503")]
    world.submitter.handle(message(REQUEST))
    world.clock.advance(world.policy.max_wait + timedelta(minutes=30))
    world.poller.sweep()
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert "history" in event.error.message
    assert len(world.provider.submitted) == 1


def test_history_is_read_within_the_time_the_invocation_has_left(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message(REQUEST))
    later(world)
    world.submitter.handle(message(REQUEST, receive_count=2, seconds_left=50.0))
    [within] = world.provider.history_within
    assert 0 < within <= 50.0 - world.policy.submit_time_margin.total_seconds()


def kling_with_a_reference(request_id: str = "ref-1") -> dict[str, object]:
    return {
        "request_id": request_id,
        "prompt": "a kite over the sea",
        "model": "kling-video-2-6",
        "ref_images": ["s3://in/a.png"],
    }


def test_request_waits_for_a_reference_slot_only_while_its_invocation_has_time(world) -> None:
    submitter = world.submitter
    while submitter.reference_slots.acquire(blocking=False):
        pass  # every slot taken by requests being sent
    started = time.monotonic()
    result = submitter.handle(
        message(kling_with_a_reference(), seconds_left=world.policy.submit_time_margin.total_seconds() + 6)
    )
    assert time.monotonic() - started < 5
    assert isinstance(result, Retry)
    job = world.store.get("ref-1")
    assert (job.reference_failures, world.provider.submitted) == (0, [])


def test_too_little_time_to_read_references_is_never_counted_against_them(world) -> None:
    too_little = world.policy.submit_time_margin.total_seconds() + 1
    for count in range(1, 8):
        world.clock.advance(world.policy.claim_lease)
        world.submitter.handle(message(kling_with_a_reference(), receive_count=count, seconds_left=too_little))
    assert world.publisher.finals == []  # never invalid_request for the relay's own lack of time
    assert world.store.get("ref-1").reference_failures == 0
    assert world.files.fetched == []


def test_attempt_that_crashed_before_reaching_the_provider_goes_again_within_minutes_of_its_lease(world) -> None:
    def dies_before_sending(*_: object) -> object:
        raise ContainerDied()

    submit, world.provider.submit = world.provider.submit, dies_before_sending
    with pytest.raises(ContainerDied):
        world.submitter.handle(message(REQUEST, seconds_left=120))
    world.provider.submit = submit
    lease_until = world.store.get("ad-1").lease_until
    while world.store.get("ad-1").state is JobState.RECEIVED and world.clock.now < lease_until + timedelta(minutes=5):
        world.minute()
    job = world.store.get("ad-1")
    assert job.state is JobState.SUBMITTED
    assert world.clock.now <= lease_until + timedelta(minutes=3)
    assert len(world.provider.history) == 1
