"""A breaker per model: failures in a row that were not the requests' fault open it; its requests
then go to their fallback without trying it, or wait in line spending nothing, until one probe
request gets a video from it after a cool-down (docs/reliability.md, "A breaker per model")."""

import json
from datetime import timedelta

from sora_relay.domain.events import EventType
from sora_relay.domain.ports import BreakerState
from sora_relay.domain.provider import MaybeTaken
from sora_relay.services.submit.messages import InboundMessage

SYSTEM_ERROR = {"status": 3, "error_code": "SYSTEM_ERROR", "error_message": "internal error", "used_credit": 0}
VIDEO = {"status": 2, "video_url": "https://cdn.geminigen.ai/v.mp4"}


def _send(world, request_id: str, **fields: object) -> None:
    body = {"request_id": request_id, "prompt": f"a lighthouse in a storm, take {request_id}", "model": "grok-3"}
    world.submitter.handle(InboundMessage(f"m-{request_id}", json.dumps({**body, **fields})))


def _each_fails(world, count: int, failure: dict[str, object]) -> None:
    """`count` requests of grok-3, one after the other, each generation ending as `failure` says."""
    for n in range(count):
        _send(world, f"r-{n}")
        world.clock.advance(world.policy.poll_interval)
        world.provider.records = [world.record(**failure)]
        world.poller.sweep()


def _open(world, ago: timedelta = timedelta(0)) -> None:
    world.breaker_store.breakers["grok-3"] = BreakerState(failures=5, opened_at=world.clock() - ago)


def test_five_provider_failures_in_a_row_open_the_models_breaker(world) -> None:
    _each_fails(world, 5, SYSTEM_ERROR)
    state = world.breaker_store.read("grok-3")
    assert (state.failures, state.opened_at) == (5, world.clock())
    assert world.metrics.counts["BreakersOpened[model=grok-3]"] == 1


def test_content_refusals_are_the_requests_and_never_open_a_breaker(world) -> None:
    _each_fails(world, 5, {"status": 3, "error_code": "PUBLIC_ERROR_UNSAFE_CONTENT"})
    _each_fails(world, 1, {"status": -2, "error_code": "PUBLIC_ERROR_POLICY_VIOLATION"})
    _each_fails(world, 1, {"status": 3, "error_code": "INVALID_INPUT"})
    assert world.breaker_store.read("grok-3").failures == 0


def test_a_video_made_ends_the_failures_in_a_row(world) -> None:
    _each_fails(world, 4, SYSTEM_ERROR)
    _send(world, "made")
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(**VIDEO)]
    world.poller.sweep()
    assert world.breaker_store.read("grok-3") == BreakerState()


def test_server_errors_at_submit_count_against_the_model(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502", server_error=True)]
    _send(world, "r-1")
    assert world.breaker_store.read("grok-3").failures == 1


def test_a_generation_that_never_started_counts_against_the_model(world) -> None:
    _send(world, "r-1")
    world.clock.advance(world.policy.max_wait)
    world.provider.records = [world.record(status=0, status_percentage=0)]
    world.poller.sweep()
    assert world.breaker_store.read("grok-3").failures == 1


def test_with_the_breaker_open_a_request_goes_to_its_fallback_without_trying_the_model(world) -> None:
    _open(world)
    _send(world, "r-1", fallback=["kling-video-2-6"])
    world.deliver_starts()
    assert [request.model for request in world.provider.submitted] == ["kling-video-2-6"]
    job = world.store.get("r-1")
    [skipped] = job.attempts
    assert (skipped.model, skipped.outcome, skipped.provider_uuid) == ("grok-3", "skipped", None)
    assert "breaker is open" in skipped.error.message


def test_with_the_breaker_open_a_request_without_fallback_waits_in_line_spending_nothing(world) -> None:
    _open(world)
    _send(world, "r-1")
    job = world.store.get("r-1")
    assert job.waiting
    assert "breaker is open" in job.held
    assert world.provider.submitted == []
    assert world.publisher.finals == []


def test_after_the_cool_down_one_probe_goes_and_its_video_closes_the_breaker(world) -> None:
    _open(world)
    _send(world, "r-1")
    _send(world, "r-2")
    world.minute(int(world.policy.breaker_cool_down.total_seconds() // 60))
    assert [request.prompt for request in world.provider.submitted] == ["a lighthouse in a storm, take r-1"]
    assert world.breaker_store.read("grok-3").probe == "r-1"
    assert world.store.get("r-2").waiting  # one probe at a time
    world.provider.records = [world.record(**VIDEO)]
    world.minute(2)
    assert world.breaker_store.read("grok-3") == BreakerState()
    assert len(world.provider.submitted) == 2  # the line goes on


def test_a_probe_that_fails_opens_the_breaker_again(world) -> None:
    _open(world, ago=world.policy.breaker_cool_down)
    _send(world, "r-1")
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(**SYSTEM_ERROR)]
    world.poller.sweep()
    state = world.breaker_store.read("grok-3")
    assert (state.failures, state.opened_at, state.probe) == (6, world.clock(), None)
    [event] = world.publisher.finals
    assert event.event is EventType.FAILED  # a failure the request had no fallback for ends it
