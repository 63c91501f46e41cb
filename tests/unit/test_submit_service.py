import json
from dataclasses import replace
from datetime import timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.ports import InvalidReference, ReferenceUnavailable
from sora_relay.domain.provider import Rejected, RetryLater
from sora_relay.domain.request import MAX_REFERENCES_BYTES, VideoRequest
from sora_relay.services.submit.messages import Done, InboundMessage, Retry


def message(body: object, message_id: str = "m-1", receive_count: int = 1) -> InboundMessage:
    text = body if isinstance(body, str) else json.dumps(body)
    return InboundMessage(message_id=message_id, body=text, receive_count=receive_count)


REQUEST = {"request_id": "ad-1", "prompt": "a fox in the snow", "metadata": {"campaign": "spring"}}


def test_new_request_is_submitted_and_recorded(world) -> None:
    assert world.submitter.handle(message(REQUEST)) == Done()
    job = world.store.get("ad-1")
    assert job.state is JobState.SUBMITTED
    assert job.provider.uuid == "sora_abc"
    assert job.next_check_at == world.clock.now + world.policy.poll_interval
    assert [r.prompt for r in world.provider.submitted] == ["a fox in the snow"]


def test_message_delivered_three_times_is_submitted_once(world) -> None:
    for _ in range(3):
        assert world.submitter.handle(message(REQUEST)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.publisher.finals == []


def test_repeat_with_other_body_is_ignored_and_counted(world) -> None:
    world.submitter.handle(message(REQUEST))
    world.submitter.handle(message({**REQUEST, "prompt": "a wolf"}, message_id="m-2"))
    assert len(world.provider.submitted) == 1
    assert world.metrics.counts["DuplicateRequestsWithDifferentBody"] == 1


def test_redelivered_identical_message_is_not_counted_as_different(world) -> None:
    world.submitter.handle(message(REQUEST))
    world.submitter.handle(message(REQUEST))
    assert world.metrics.counts["DuplicateRequestsWithDifferentBody"] == 0
    assert world.metrics.counts["DuplicateRequests"] == 1


def test_invalid_message_fails_at_once_without_the_provider(world) -> None:
    assert world.submitter.handle(message({"request_id": "bad-1", "prompt": "x", "duration": 12})) == Done()
    assert world.provider.submitted == []
    [event] = world.publisher.finals
    assert event.event_id == "bad-1:video.failed"
    assert event.error.code == "invalid_request"
    assert event.error.message.startswith("duration:")
    assert event.request is None
    assert event.provider is None


def test_invalid_message_redelivered_publishes_one_event(world) -> None:
    for _ in range(2):
        world.submitter.handle(message("not json", message_id="m-9"))
    assert [e.event_id for e in world.publisher.finals] == ["m-9:video.failed"]


def test_provider_refusal_ends_as_provider_rejected(world) -> None:
    world.provider.outcomes = [Rejected(422, "prompt too long for this model")]
    world.submitter.handle(message(REQUEST))
    [event] = world.publisher.finals
    assert event.error.code == "provider_rejected"
    assert "HTTP 422" in event.error.message
    assert event.metadata == {"campaign": "spring"}
    assert world.store.get("ad-1").state is JobState.FAILED


def test_provider_too_busy_puts_the_request_back_in_line_and_pauses_starts_for_its_retry_after(world) -> None:
    world.provider.outcomes = [RetryLater("HTTP 429", retry_after=42)]
    assert world.submitter.handle(message(REQUEST)) == Done()
    job = world.store.get("ad-1")
    assert (job.waiting, job.placed_at, job.attempt_started_at) == (True, None, None)
    assert world.waiting.state.resume_at == world.clock.now + timedelta(seconds=42)
    assert world.waiting.state.holder_ids == frozenset()


def test_refusals_in_a_row_pause_the_line_longer_each_time(world) -> None:
    world.provider.outcomes = [RetryLater("HTTP 503"), RetryLater("HTTP 503")]
    world.submitter.handle(message(REQUEST))
    first = world.waiting.state.resume_at - world.clock.now
    world.clock.advance(first)
    world.poller.tend_line()
    world.submitter.handle(message(REQUEST, message_id="started"))
    second = world.waiting.state.resume_at - world.clock.now
    assert second == 2 * first


def test_request_refused_once_is_started_again_when_the_line_resumes(world) -> None:
    world.provider.outcomes = [RetryLater("HTTP 429", retry_after=1)]
    world.submitter.handle(message(REQUEST))
    world.clock.advance(world.waiting.state.resume_at - world.clock.now)
    world.poller.tend_line()
    assert [request_id for request_id, _ in world.request_queue.resent] == ["ad-1"]
    assert world.submitter.handle(message(REQUEST, message_id="started")) == Done()
    assert len(world.provider.submitted) == 2
    assert world.store.get("ad-1").state is JobState.SUBMITTED


def test_claim_held_by_a_live_invocation_is_not_submitted_again(world) -> None:
    world.provider.die_after_taking = RuntimeError("the container died after the provider call")
    with pytest.raises(RuntimeError):
        world.submitter.handle(message(REQUEST))
    result = world.submitter.handle(message(REQUEST, receive_count=2))
    assert isinstance(result, Retry)
    assert len(world.provider.submitted) == 1


def test_claim_whose_lease_ran_out_is_taken_over(world) -> None:
    world.provider.outcomes = [RetryLater("HTTP 429")]
    world.store.fail_next_save = RuntimeError("the release was lost")
    # The write that puts the refused request back in line (after its attempt was saved).
    world.store.fail_save_when = lambda job: job.waiting and world.store.jobs["ad-1"].attempt_open
    with pytest.raises(RuntimeError):
        world.submitter.handle(message(REQUEST))
    world.clock.advance(world.policy.claim_lease + timedelta(seconds=1))
    assert world.submitter.handle(message(REQUEST, receive_count=2)) == Done()
    assert world.store.get("ad-1").state is JobState.SUBMITTED


def test_missing_reference_file_is_an_invalid_request(world) -> None:
    world.files.failures["s3://in/missing.png"] = InvalidReference("s3://in/missing.png cannot be read (NoSuchKey)")
    world.submitter.handle(
        message({**REQUEST, "model": "veo-3.1", "ref_images": ["s3://in/ok.png", "s3://in/missing.png"]})
    )
    [event] = world.publisher.finals
    assert event.error.code == "invalid_request"
    assert event.error.message.startswith("ref_images[1]: ")
    assert world.provider.submitted == []


def test_references_together_larger_than_the_bound_are_an_invalid_request(world) -> None:
    world.files.size = MAX_REFERENCES_BYTES // 13
    references = [f"s3://in/{n}.png" for n in range(14)]
    world.submitter.handle(message({**REQUEST, "model": "seedance-2-5-omni", "ref_images": references}))
    [event] = world.publisher.finals
    assert event.error.code == "invalid_request"
    assert "the references together are more than" in event.error.message
    assert world.provider.submitted == []


def test_unreadable_reference_file_is_retried(world) -> None:
    world.files.failures["s3://in/slow.png"] = ReferenceUnavailable("throttled")
    assert isinstance(world.submitter.handle(message({**REQUEST, "files": ["s3://in/slow.png"]})), Retry)
    assert world.provider.submitted == []
    assert world.store.get("ad-1").lease_until is None


def test_failed_publish_is_published_again_on_redelivery_with_the_same_event_id(world) -> None:
    world.publisher.failures = [ConnectionError("SNS unavailable")]
    world.provider.outcomes = [Rejected(400, "bad")]
    with pytest.raises(ConnectionError):
        world.submitter.handle(message(REQUEST))
    world.submitter.handle(message(REQUEST, receive_count=2))
    assert [e.event_id for e in world.publisher.finals] == ["ad-1:video.failed"]
    assert world.store.get("ad-1").event_published
    assert len(world.provider.submitted) == 1


def test_submission_is_not_started_with_too_little_time_left(world) -> None:
    short = InboundMessage(message_id="m-1", body=json.dumps(REQUEST), seconds_left=lambda: 10.0)
    assert isinstance(world.submitter.handle(short), Retry)
    assert world.provider.submitted == []
    assert world.store.get("ad-1").lease_until is None


def test_held_request_claimed_before_families_existed_still_goes_when_its_message_comes(world) -> None:
    # As an earlier version stored it: its request without a family, `files: []`, and a
    # fingerprint taken over those fields.
    stored = VideoRequest.model_validate_json(
        '{"prompt": "a fox", "model": "sora-2", "duration": 10, "resolution": "small",'
        ' "aspect_ratio": "landscape", "files": [], "metadata": {}}'
    )
    world.submitter.handle(message({**REQUEST, "request_id": "old"}))
    job = world.store.get("old")
    world.store.jobs["old"] = replace(
        job,
        state=JobState.RECEIVED,
        provider=None,
        request=stored,
        fingerprint="an earlier version's",
        lease_until=None,
    )
    world.provider.submitted.clear()
    resent = (
        '{"request_id": "old", "prompt": "a fox", "model": "sora-2", "duration": 10, "resolution": "small",'
        ' "aspect_ratio": "landscape", "files": [], "metadata": {}}'
    )
    assert world.submitter.handle(InboundMessage("m-9", resent)) == Done()
    assert len(world.provider.submitted) == 1
    assert world.metrics.counts["DuplicateRequestsWithDifferentBody"] == 0


def test_reference_too_slow_to_read_is_retried_holding_nothing_then_ends_naming_it(world) -> None:
    world.daily_credit_budget = 1000
    world.files.failures["s3://in/slow.png"] = ReferenceUnavailable("s3://in/slow.png was not read within 60 seconds")
    body = {**REQUEST, "files": ["s3://in/slow.png"]}
    for attempt in range(1, world.policy.reference_attempts):
        assert isinstance(world.submitter.handle(message(body, receive_count=attempt)), Retry)
        assert world.ledger.day(world.clock.now.date()).spent == 0
        assert world.waiting.state.holder_ids == frozenset()
    assert world.submitter.handle(message(body, receive_count=5)) == Done()
    [event] = world.publisher.finals
    assert event.error.code == "invalid_request"
    assert event.error.message.startswith("files[0]: s3://in/slow.png was not read within 60 seconds")
    assert world.provider.submitted == []
