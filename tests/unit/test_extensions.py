"""Extending an earlier video: it waits for the earlier one, fails as it failed, and goes to the
family's extend endpoint with the earlier generation's uuid, paid once."""

import json

from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import MaybeTaken
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.fakes import TakenThenLost

SCENE_1 = {"request_id": "scene-1", "prompt": "a lighthouse at dawn", "model": "veo-3.1-fast"}
SCENE_2 = {"request_id": "scene-2", "prompt": "the camera rises over the sea", "extend": {"request_id": "scene-1"}}


def message(body: dict, receive_count: int = 1) -> InboundMessage:
    return InboundMessage(f"m-{receive_count}", json.dumps(body), receive_count, lambda: 120.0)


def finish(world, request_id: str, **record) -> None:
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(**record)]
    world.poller.sweep()
    assert world.store.get(request_id).state in (JobState.COMPLETED, JobState.FAILED)


def test_extension_of_a_finished_video_goes_to_its_extend_endpoint_with_its_uuid(world) -> None:
    world.submitter.handle(message(SCENE_1))
    finish(world, "scene-1", status=2, generated_video=[{"video_url": "https://cdn.geminigen.ai/v.mp4"}])
    assert world.submitter.handle(message(SCENE_2)) == Done()
    first = world.store.get("scene-1").provider.uuid
    assert world.provider.extended == [None, first]
    extension = world.store.get("scene-2")
    assert (extension.state, extension.request.model, extension.request.family) == (
        JobState.SUBMITTED,
        "veo-3.1-fast",
        "veo",
    )
    assert extension.provider.uuid != first


def test_extension_of_an_unfinished_video_waits_for_it(world) -> None:
    world.submitter.handle(message(SCENE_1))
    assert world.submitter.handle(message(SCENE_2)) == Done()
    waiting = world.store.get("scene-2")
    assert waiting.waiting
    assert "waiting for request scene-1" in waiting.held
    assert world.request_queue.resent == []  # it waits in line, not on the queue
    assert len(world.provider.submitted) == 1


def test_extension_of_a_failed_video_fails_the_same_way(world) -> None:
    world.submitter.handle(message(SCENE_1))
    finish(world, "scene-1", status=3, error_code="PUBLIC_ERROR_UNSAFE_CONTENT")
    world.submitter.handle(message(SCENE_2))
    [first, second] = world.publisher.finals
    assert (second.request_id, second.error.code) == ("scene-2", first.error.code)
    assert "the video it extends (request scene-1) failed" in second.error.message
    assert len(world.provider.submitted) == 1


def test_extension_whose_answer_was_lost_is_adopted_not_paid_again(world) -> None:
    world.submitter.handle(message(SCENE_1))
    finish(world, "scene-1", status=2, generated_video=[{"video_url": "https://cdn.geminigen.ai/v.mp4"}])
    world.provider.outcomes = [TakenThenLost(MaybeTaken("the provider answered HTTP 504"))]
    world.submitter.handle(message(SCENE_2))
    world.clock.advance(world.policy.reconcile_delay * 2)
    assert world.submitter.handle(message(SCENE_2, receive_count=2)) == Done()
    assert len(world.provider.submitted) == 2  # scene-1 and scene-2, once each
    assert world.store.get("scene-2").provider.uuid == world.provider.history[-1].uuid


def test_extension_of_an_unknown_request_is_invalid_and_reaches_no_endpoint(world) -> None:
    world.submitter.handle(message({**SCENE_2, "extend": {"request_id": "nobody"}}))
    [event] = world.publisher.finals
    assert (event.error.code, event.error.message.split(":")[0]) == ("invalid_request", "extend")
    assert world.provider.submitted == []
