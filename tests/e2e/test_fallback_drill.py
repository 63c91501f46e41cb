"""The fallback drill, on the local stack against the simulator: Veo requests its filters refuse
complete on their next model, billed once; a failure that used credits never falls back; a
model the provider no longer serves ends a request without a fallback at once. (A lost answer and
a crash before any fallback: the crash drills, tests/e2e/test_crash_around_a_fallback.py.)"""

import json
import time
from collections.abc import Iterator

import pytest

from sora_relay_tools.local.stack import LocalStack
from sora_relay_tools.simulator import GeminiGenSimulator

from ..support.cli import cli
from ..support.local import local_stack, send

KLING_PRICE = 50  # the simulator's price of a Kling generation


@pytest.fixture(scope="module")
def stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    """The local stack with the operator's default chain for Veo 3.1 Fast."""
    with local_stack(module_simulator, FallbackModels="veo-3.1-fast>kling-video-2-6") as stack:
        yield stack


def billed(simulator: GeminiGenSimulator, prompt: str) -> list[tuple[str, float | None]]:
    """Each generation of `prompt`, oldest first: its model, and the credits it used."""
    return [(g.model, simulator.credit_used(g)) for g in simulator.submissions(prompt)]


def test_veo_requests_its_audio_filter_refuses_complete_on_kling_billed_once(stack, module_simulator, tmp_path):
    bodies = [
        {
            "request_id": f"filtered-{n}",
            "prompt": f"a choir sings in a cave [audio-filtered] {n}",
            "model": "veo-3.1-fast",
        }
        for n in range(3)
    ]
    tracked = send(stack, tmp_path, *bodies)
    for body, job in zip(bodies, tracked, strict=True):
        event = job.event
        assert (event["event"], event["request"]["model"]) == ("video.completed", "kling-video-2-6"), event
        assert [(a["model"], a["outcome"], a.get("used_credit")) for a in event["attempts"]] == [
            ("veo-3.1-fast", "failed", 0),
            ("kling-video-2-6", "completed", KLING_PRICE),
        ]
        assert "PUBLIC_ERROR_AUDIO_FILTERED" in event["attempts"][0]["error"]["message"]
        assert billed(module_simulator, body["prompt"]) == [("veo-3.1-fast", 0), ("kling-video-2-6", KLING_PRICE)]
        assert [e["event_id"] for e in job.interim if e["event"] == "video.submitted"] == [
            f"{body['request_id']}:video.submitted",
            f"{body['request_id']}:video.submitted:2",
        ]


def test_a_fallback_named_in_the_message_is_made_with_its_own_settings(stack, module_simulator, tmp_path):
    body = {
        "request_id": "prominent-1",
        "prompt": "a famous actor waves [prominent-people]",
        "model": "veo-3.1",
        "fallback": [{"model": "grok-3", "duration": 10}],
    }
    [job] = send(stack, tmp_path, body)
    assert (job.event["request"]["model"], job.event["request"]["duration"]) == ("grok-3", 10)
    assert [g.model for g in module_simulator.submissions(body["prompt"])] == ["veo-3.1", "grok-3"]


def test_a_failure_that_used_credits_does_not_fall_back(stack, module_simulator, tmp_path):
    default = module_simulator.credit_used
    module_simulator.credit_used = lambda g: g.estimated_credit if "[charged]" in g.fields["prompt"] else default(g)
    try:
        body = {"request_id": "charged-1", "prompt": "a storm at sea [fail] [charged]", "model": "veo-3.1-fast"}
        [job] = send(stack, tmp_path, body, expect="video.failed")
    finally:
        module_simulator.credit_used = default
    assert job.event["error"]["code"] == "generation_failed"
    assert "attempts" not in job.event
    assert [g.model for g in module_simulator.submissions(body["prompt"])] == ["veo-3.1-fast"]


def test_a_retired_model_without_a_fallback_ends_within_a_minute_saying_so(stack, module_simulator, tmp_path):
    module_simulator.retired_models.add("sora-2-pro")
    try:
        started = time.monotonic()
        body = {"request_id": "retired-1", "prompt": "an old film reel", "model": "sora-2-pro", "duration": 25}
        [job] = send(stack, tmp_path, body, expect="video.failed")
    finally:
        module_simulator.retired_models.clear()
    assert time.monotonic() - started < 60
    assert job.event["error"]["code"] == "provider_rejected"
    assert "refused model sora-2-pro" in job.event["error"]["message"]
    assert "no longer available" in job.event["error"]["message"]


def test_a_model_failing_five_times_in_a_row_opens_its_breaker_and_the_next_go_to_their_fallback(
    stack, module_simulator, tmp_path
):
    module_simulator.broken_models.add("seedance-2")
    try:
        failing = [
            {"request_id": f"broken-{n}", "prompt": f"a paper boat on a river {n}", "model": "seedance-2"}
            for n in range(5)
        ]
        assert {job.event["error"]["code"] for job in send(stack, tmp_path, *failing, expect="video.failed")} == {
            "generation_failed"
        }
        states = {model["model"]: model["state"] for model in json.loads(cli("models", "--json").stdout)["models"]}
        assert states["seedance-2"]["breaker"] == "open"
        assert states["grok-3"] == {"breaker": "ok"}
        body = {"request_id": "after-5", "prompt": "a paper boat at sea", "model": "seedance-2", "fallback": ["grok-3"]}
        [job] = send(stack, tmp_path, body)
    finally:
        module_simulator.broken_models.clear()
    assert job.event["request"]["model"] == "grok-3"
    assert [(a["model"], a["outcome"]) for a in job.event["attempts"]] == [
        ("seedance-2", "skipped"),
        ("grok-3", "completed"),
    ]
    assert [g.model for g in module_simulator.submissions(body["prompt"])] == ["grok-3"]  # never tried
