"""Fallback: a request's next model after a failure the provider reported as final and that cost
nothing; never after an ambiguous submit, a charged failure (unless allowed) or the request's own
fault (docs/contract.md, "Fallback")."""

import json
from datetime import timedelta

import pytest

from sora_relay.domain.events import AttemptSummary, EventType
from sora_relay.domain.families import RequestRules, next_attempt, parse_request
from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import MaybeTaken, ProviderUnavailable, Rejected
from sora_relay.domain.request import InvalidRequest, ParsedRequest
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import InboundMessage

from ..support.fakes import START

AUDIO_FILTERED = {"status": 3, "error_code": "PUBLIC_ERROR_AUDIO_FILTERED", "error_message": "audio filtered"}
VEO_TO_KLING = {"prompt": "a red fox runs through the snow", "model": "veo-3.1", "fallback": ["kling-video-2-6"]}


def _parse(body: dict[str, object], rules: RequestRules | None = None) -> ParsedRequest | InvalidRequest:
    return parse_request(json.dumps(body), "m-1", rules)


def _send(world, body: dict[str, object], request_id: str = "ad-1") -> None:
    world.submitter.handle(InboundMessage(f"m-{request_id}", json.dumps({"request_id": request_id, **body})))


def _fail_first_generation(world, **failure: object) -> Outcome:
    """The first generation's status check finds it failed as `failure` says."""
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(**failure)]
    [outcome] = world.poller.sweep().outcomes
    return outcome


# Intake: every entry read against its own model, before anything is spent.


def test_a_fallback_field_its_family_cannot_take_is_invalid_naming_the_entry_and_field() -> None:
    invalid = _parse({**VEO_TO_KLING, "fallback": [{"model": "kling-video-2-6", "resolution": "720p"}]})
    assert isinstance(invalid, InvalidRequest)
    assert invalid.message.startswith("fallback[0].resolution: not a field kling-video-2-6")


def test_a_fallback_value_its_model_does_not_take_is_invalid_naming_the_entry() -> None:
    invalid = _parse({**VEO_TO_KLING, "fallback": ["kling-video-2-6", {"model": "grok-3", "duration": 7}]})
    assert isinstance(invalid, InvalidRequest)
    assert invalid.message.startswith("fallback[1].duration: 7 is not a value grok-3 takes")


def test_an_unknown_fallback_model_is_invalid() -> None:
    invalid = _parse({**VEO_TO_KLING, "fallback": ["kling-video-9"]})
    assert isinstance(invalid, InvalidRequest)
    assert invalid.message.startswith("fallback[0].model: unknown model 'kling-video-9'")


def test_more_than_three_fallbacks_are_invalid() -> None:
    invalid = _parse({**VEO_TO_KLING, "fallback": ["grok-3"] * 4})
    assert isinstance(invalid, InvalidRequest)
    assert "fallback: List should have at most 3 items" in invalid.message


def test_an_extension_takes_no_fallback() -> None:
    earlier = _parse(VEO_TO_KLING)
    assert isinstance(earlier, ParsedRequest)
    body = {"prompt": "and then it jumps", "extend": {"request_id": "m-1"}, "fallback": ["grok-3"]}
    invalid = parse_request(json.dumps(body), "m-2", None, lambda _: earlier.request)
    assert isinstance(invalid, InvalidRequest)
    assert invalid.message.startswith("fallback: an extension")


def test_the_stacks_fallback_models_apply_to_a_request_that_names_none() -> None:
    rules = RequestRules.of(fallback_models="veo-3.1>kling-video-2-6>grok-3")
    parsed = _parse({"prompt": "a red fox runs through the snow", "model": "veo-3.1"}, rules)
    assert isinstance(parsed, ParsedRequest)
    assert [entry.model for entry in parsed.request.fallback or []] == ["kling-video-2-6", "grok-3"]


def test_an_empty_fallback_list_opts_out_of_the_stacks_fallback_models() -> None:
    rules = RequestRules.of(fallback_models="veo-3.1>kling-video-2-6")
    parsed = _parse({"prompt": "a red fox runs through the snow", "model": "veo-3.1", "fallback": []}, rules)
    assert isinstance(parsed, ParsedRequest)
    assert next_attempt(parsed.request, rules) is None


@pytest.mark.parametrize("chain", ["veo-3.1>kling-video-9", "veo-3.1", "veo-3.1>grok-3,veo-3.1>sora-2"])
def test_fallback_models_the_stack_cannot_follow_stop_it_at_start(chain: str) -> None:
    with pytest.raises(ValueError, match="FallbackModels"):
        RequestRules.of(fallback_models=chain)


def test_the_next_attempt_carries_prompt_references_priority_and_metadata_over() -> None:
    body = {
        **VEO_TO_KLING,
        "fallback": [{"model": "grok-3", "duration": 10}],
        "priority": "high",
        "metadata": {"campaign": "spring"},
        "ref_images": ["s3://inputs/fox.png"],
    }
    parsed = _parse(body)
    assert isinstance(parsed, ParsedRequest)
    following = next_attempt(parsed.request, RequestRules.of())
    assert following is not None
    assert (following.model, following.family, following.duration) == ("grok-3", "grok", 10)
    assert following.resolution == "480p"  # the model's default, for what the entry leaves out
    assert following.files == ["s3://inputs/fox.png"]  # Grok's reference field
    assert (following.prompt, following.priority, following.metadata) == (
        body["prompt"],
        "high",
        {"campaign": "spring"},
    )
    assert following.fallback == []


# When it fires: a final failure that cost nothing.


def test_an_audio_filtered_generation_goes_on_to_its_next_model_in_line(world) -> None:
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, **AUDIO_FILTERED) is Outcome.FELL_BACK
    job = world.store.get("ad-1")
    assert (job.state, job.provider, job.claimed_request.model) == (JobState.RECEIVED, None, "kling-video-2-6")
    assert world.publisher.finals == []
    # Started from the line by the sweep's fill (places are free), with a message to the submitter.
    assert [(request_id, request.model) for request_id, request in world.request_queue.resent] == [
        ("ad-1", "kling-video-2-6")
    ]
    world.deliver_starts()
    assert [request.model for request in world.provider.submitted] == ["veo-3.1", "kling-video-2-6"]
    submitted = world.publisher.of(EventType.SUBMITTED)
    assert [event.event_id for event in submitted] == ["ad-1:video.submitted", "ad-1:video.submitted:2"]
    assert submitted[1].request.model == "kling-video-2-6"


@pytest.mark.parametrize(
    "failure",
    [
        {"status": -2, "error_code": "PUBLIC_ERROR_POLICY_VIOLATION"},
        {"status": 3, "error_code": "PUBLIC_ERROR_PROMINENT_PEOPLE"},
        {"status": 3, "error_code": "PUBLIC_ERROR_PROMINENT_PEOPLE_UPLOAD"},
        {"status": 3, "error_code": "SYSTEM_ERROR", "used_credit": 0},
    ],
)
def test_each_failure_that_cost_nothing_falls_back(world, failure: dict[str, object]) -> None:
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, **failure) is Outcome.FELL_BACK


def test_a_failure_that_used_credits_ends_the_request(world) -> None:
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, **AUDIO_FILTERED, used_credit=60) is Outcome.FAILED
    [event] = world.publisher.finals
    assert (event.error.code, event.attempts) == ("generation_failed", None)


def test_a_failure_that_used_credits_falls_back_when_the_operator_allows(world) -> None:
    world.fallback_after_charged = True
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, **AUDIO_FILTERED, used_credit=60) is Outcome.FELL_BACK


def test_a_failure_whose_cost_is_not_stated_falls_back_when_the_operator_allows_charged_ones(world) -> None:
    world.fallback_after_charged = True
    world.daily_credit_budget = 1_000
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, status=3, error_code="SYSTEM_ERROR") is Outcome.FELL_BACK
    assert world.ledger.day(START.date()).spent == 30  # the failed attempt keeps its quote: it may have cost


def test_a_failure_whose_cost_is_not_stated_ends_the_request(world) -> None:
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, status=3, error_code="SYSTEM_ERROR") is Outcome.FAILED


@pytest.mark.parametrize("code", ["INVALID_INPUT", "TEXT_TOO_LONG", "FILE_TYPE_NOT_ALLOWED"])
def test_a_failure_that_is_the_requests_own_fault_does_not_fall_back(world, code: str) -> None:
    _send(world, VEO_TO_KLING)
    assert _fail_first_generation(world, status=3, error_code=code, used_credit=0) is Outcome.FAILED


def test_a_request_without_a_fallback_ends_as_before(world) -> None:
    _send(world, {**VEO_TO_KLING, "fallback": []})
    assert _fail_first_generation(world, **AUDIO_FILTERED) is Outcome.FAILED


def test_the_last_fallback_failing_ends_the_request_listing_every_attempt(world) -> None:
    _send(world, VEO_TO_KLING)
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.minute()
    world.provider.records = [world.record(uuid="sora_1", status=-2, error_code="PUBLIC_ERROR_MINOR")]
    world.minute()
    [event] = world.publisher.finals
    assert event.error.code == "generation_failed"
    assert [(a.model, a.provider_uuid, a.outcome, a.error.code) for a in event.attempts] == [
        ("veo-3.1", "sora_abc", "failed", "generation_failed"),
        ("kling-video-2-6", "sora_1", "failed", "generation_failed"),
    ]
    assert event.attributes()["model"] == "kling-video-2-6"


def test_the_final_event_names_the_model_that_made_the_video_and_every_attempt(world) -> None:
    _send(world, VEO_TO_KLING)
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.minute()
    world.provider.records = [world.record(uuid="sora_1", status=2, video_url="https://cdn.geminigen.ai/v.mp4")]
    world.minute()
    world.archiver.archive_job("ad-1")
    [event] = world.publisher.finals
    assert event.event is EventType.COMPLETED
    assert (event.request.model, event.attributes()["model"]) == ("kling-video-2-6", "kling-video-2-6")
    assert [(a.model, a.outcome, a.used_credit) for a in event.attempts] == [
        ("veo-3.1", "failed", 0),
        ("kling-video-2-6", "completed", None),
    ]


def test_the_failed_model_costs_the_day_nothing(world) -> None:
    world.daily_credit_budget = 1_000
    _send(world, VEO_TO_KLING)
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.minute()
    assert world.ledger.day(START.date()).spent == 30  # the Kling attempt's quote only


# Never while an attempt may have been taken, never for the request's own fault.


def test_a_lost_answer_never_falls_back_while_the_attempt_may_have_been_taken(world) -> None:
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 504")]
    world.provider.history_failures = [ProviderUnavailable("history down")] * 1_000
    _send(world, VEO_TO_KLING)
    world.minute(world.policy.max_wait_minutes + 5)
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert [request.model for request in world.provider.submitted] == ["veo-3.1"]


def test_a_refusal_naming_the_model_falls_back_at_once(world) -> None:
    world.provider.outcomes = [Rejected(400, "INVALID_INPUT: model veo-3.1 is no longer available")]
    _send(world, VEO_TO_KLING)
    world.minute()
    assert [request.model for request in world.provider.submitted] == ["veo-3.1", "kling-video-2-6"]
    assert world.store.get("ad-1").attempts[0].error.code == "provider_rejected"


def test_a_refusal_of_the_prompt_itself_does_not_fall_back(world) -> None:
    world.provider.outcomes = [Rejected(400, "TEXT_TOO_LONG: the prompt is too long")]
    _send(world, VEO_TO_KLING)
    [event] = world.publisher.finals
    assert (event.error.code, len(world.provider.submitted)) == ("provider_rejected", 1)


def test_a_retry_on_the_same_model_never_adopts_the_first_attempts_generation(world) -> None:
    _send(world, {**VEO_TO_KLING, "fallback": ["veo-3.1"]})
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 504")]  # nothing taken
    world.minute()
    world.clock.advance(world.policy.reconcile_delay)
    world.minute()
    # The history shows only the first attempt's generation: not this attempt's, so it goes again.
    assert len(world.provider.submitted) == 3
    assert world.store.get("ad-1").generation.uuid == "sora_1"


def test_a_fallback_waits_at_its_arrivals_turn_ahead_of_later_requests(world) -> None:
    world.places = 1
    _send(world, VEO_TO_KLING)
    _send(world, {"prompt": "a later request for a video", "model": "grok-3"}, "ad-2")
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.deliver_starts()
    assert [request.model for request in world.provider.submitted] == ["veo-3.1", "kling-video-2-6"]
    assert world.store.get("ad-2").waiting


def test_a_poll_dying_after_saving_the_fallback_loses_no_place(world) -> None:
    world.places = 1
    _send(world, VEO_TO_KLING)
    job = world.store.get("ad-1")
    following = next_attempt(job.claimed_request, RequestRules.of())
    summary = AttemptSummary(model="veo-3.1", provider_uuid="sora_abc", outcome="failed", used_credit=0)
    # Saved as the next attempt, and the invocation dies before it frees the place it held.
    world.store.save(job.fell_back(world.clock(), following, summary, check_at=world.clock() + timedelta(hours=1)))
    world.minute(3)
    assert [request.model for request in world.provider.submitted] == ["veo-3.1", "kling-video-2-6"]


def test_a_request_whose_fallback_is_not_submitted_yet_can_be_canceled(world) -> None:
    _send(world, VEO_TO_KLING)
    _fail_first_generation(world, **AUDIO_FILTERED)  # the fallback started: its message is on its way
    world.canceler.cancel("ad-1")
    world.deliver_starts()
    [event] = world.publisher.finals
    assert event.error.code == "canceled"
    assert [request.model for request in world.provider.submitted] == ["veo-3.1"]


def test_an_extension_of_a_video_made_by_a_fallback_continues_the_model_that_made_it(world) -> None:
    _send(world, VEO_TO_KLING)
    _fail_first_generation(world, **AUDIO_FILTERED)
    world.deliver_starts()
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(uuid="sora_1", status=2, video_url="https://cdn.geminigen.ai/v.mp4")]
    world.poller.sweep()
    world.archiver.archive_job("ad-1")
    _send(world, {"prompt": "and then it leaps over a stream", "extend": {"request_id": "ad-1"}}, "ad-2")
    assert (world.provider.submitted[-1].model, world.provider.extended[-1]) == ("kling-video-2-6", "sora_1")
