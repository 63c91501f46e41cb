"""Every family behind one contract, on the local stack: each family's request at its own
endpoint with the provider's field names, cross-family mistakes that reach no endpoint, a Veo
video extended, and a model an operator allowed."""

import json
from collections.abc import Iterator

import boto3
import pytest

from sora_relay_tools.local.stack import LocalStack
from sora_relay_tools.simulator import GeminiGenSimulator
from sora_relay_tools.simulator.media import frame_size

from ..support.local import local_stack, send
from ..support.paths import ROOT

SAMPLES = [
    "request-sora-pro-hd.json",
    "request-veo.json",
    "request-kling.json",
    "request-seedance.json",
    "request-grok.json",
    "request-minimax.json",
    "request-flux.json",
    "request-grok-lower.json",
]
SETTINGS = ("duration", "resolution", "aspect_ratio", "mode")


@pytest.fixture(scope="module")
def stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    """The local stack, as the e2e conftest's, with a model the catalogue does not know allowed."""
    with local_stack(module_simulator, ExtraModels="veo-3.2-preview") as stack:
        yield stack


def test_one_request_per_family_completes_at_its_own_endpoint_with_the_providers_fields(
    stack, module_simulator, tmp_path
) -> None:
    bodies = [json.loads((ROOT / "events" / sample).read_text()) for sample in SAMPLES]
    tracked = send(stack, tmp_path, *bodies)
    assert [job.problems for job in tracked] == [[]] * len(bodies)
    s3 = boto3.client("s3")
    for body, job in zip(bodies, tracked, strict=True):
        event = job.event
        assert event["event"] == "video.completed", event
        family = event["request"]["family"]
        assert family == {"sora-2-pro-hd": "sora", "grok-lower": "grok-lower"}.get(
            body["model"], body["model"].split("-")[0]
        )
        assert all(event["request"][name] == body[name] for name in SETTINGS if name in body)
        stored = s3.head_object(Bucket=event["video"]["bucket"], Key=event["video"]["key"])
        assert stored["ContentType"] == "video/mp4"
        generation = module_simulator.generations[event["provider"]["uuid"]]
        assert ("POST", f"/uapi/v1/video-gen/{family}") in module_simulator.requests
        sent = {name: str(value) for name, value in event["request"].items() if name in (*SETTINGS, "model", "prompt")}
        if family == "grok-lower":  # its endpoint serves one model, and takes no `model` field
            del sent["model"]
        assert generation.fields == sent
        # What the file itself shows, read from the archived MP4 (its moov first or last).
        width, height = frame_size(generation.settings)
        assert event["delivered"] == {
            "duration_seconds": float(generation.settings["duration"]),
            "width": width,
            "height": height,
            "matches_request": True,
        }


def test_an_aspect_ratio_the_provider_replaced_is_flagged_on_the_completed_event(stack, tmp_path) -> None:
    # A model an operator allowed is checked by type only: 4:5 reaches the provider, which makes 16:9.
    body = {
        "request_id": "four-five",
        "prompt": "a portrait of a cat",
        "model": "veo-3.2-preview",
        "aspect_ratio": "4:5",
    }
    [job] = send(stack, tmp_path, body)
    found = job.event["delivered"]
    assert (found["width"], found["height"], found["matches_request"]) == (1280, 720, False)
    assert found["differences"] == ["aspect_ratio: asked 4:5, delivered 1280x720"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "sora-2", "mode": "standard"}, "mode"),
        ({"model": "veo-3.1", "resolution": "small"}, "resolution"),
        ({"model": "kling-video-2-6", "aspect_ratio": "landscape"}, "aspect_ratio"),
        ({"model": "sora-3"}, "model"),
    ],
)
def test_cross_family_mistake_ends_invalid_naming_the_field_and_reaches_no_endpoint(
    stack, module_simulator, tmp_path, body, field
) -> None:
    before = len(module_simulator.requests)
    request = {"request_id": f"mistake-{field}", "prompt": "a lighthouse at dawn", **body}
    [job] = send(stack, tmp_path, request, expect="video.failed")
    assert job.event["error"]["code"] == "invalid_request"
    assert job.event["error"]["message"].startswith(f"{field}: ")
    assert not [call for call in module_simulator.requests[before:] if call[0] == "POST"]


def test_extension_of_a_veo_video_goes_to_its_extend_endpoint_and_completes_with_its_own_video(
    stack, module_simulator, tmp_path
) -> None:
    scene_1 = {"request_id": "scene-1", "prompt": "a lighthouse at dawn", "model": "veo-3.1-fast"}
    scene_2 = {"request_id": "scene-2", "prompt": "the camera rises over the sea", "extend": {"request_id": "scene-1"}}
    first, second = send(stack, tmp_path, scene_1, scene_2)
    assert (first.problems, second.problems) == ([], [])
    earlier = first.event["provider"]["uuid"]
    generation = module_simulator.generations[second.event["provider"]["uuid"]]
    assert generation.fields == {"prompt": scene_2["prompt"], "ref_history": earlier}
    assert ("POST", "/uapi/v1/video-extend/veo") in module_simulator.requests
    assert second.event["request"]["extend"] == {"request_id": "scene-1"}
    assert second.event["video"]["key"] == "videos/scene-2.mp4"
    assert second.event["video"]["sha256"]


@pytest.mark.parametrize("extended", ["sora-video", "never-sent"])
def test_extension_of_a_sora_video_or_an_unknown_request_is_invalid_naming_extend(stack, tmp_path, extended) -> None:
    if extended == "sora-video":
        [sora] = send(stack, tmp_path, {"request_id": "sora-video", "prompt": "a heron"})
        assert sora.problems == []
    body = {"request_id": f"extends-{extended}", "prompt": "and then it flies", "extend": {"request_id": extended}}
    [job] = send(stack, tmp_path, body, expect="video.failed")
    assert job.event["error"]["code"] == "invalid_request"
    assert job.event["error"]["message"].startswith("extend: ")


def test_model_allowed_by_extra_models_reaches_its_familys_endpoint(stack, module_simulator, tmp_path) -> None:
    body = {"request_id": "preview-1", "prompt": "a lighthouse at dawn", "model": "veo-3.2-preview"}
    [job] = send(stack, tmp_path, body)
    assert job.problems == []
    generation = module_simulator.generations[job.event["provider"]["uuid"]]
    assert (generation.family, generation.fields["model"]) == ("veo", "veo-3.2-preview")
