"""Every live GeminiGen video model behind one contract: requests read against the catalogue
(docs/contract.md, "The families and their fields"; docs/models.md)."""

import json

import pytest

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.families import RequestRules, parse_request
from sora_relay.domain.request import InvalidRequest, ParsedRequest, VideoRequest

RULES = RequestRules(Catalogue.bundled())


def parse(body: dict, rules: RequestRules = RULES, earlier=lambda _: None) -> ParsedRequest | InvalidRequest:
    return parse_request(json.dumps(body), "msg-1", rules, earlier)


def valid(body: dict, **options) -> VideoRequest:
    result = parse(body, **options)
    assert isinstance(result, ParsedRequest), result
    return result.request


def problem(body: dict, **options) -> str:
    result = parse(body, **options)
    assert isinstance(result, InvalidRequest), result
    return result.message


@pytest.mark.parametrize(
    ("body", "family", "filled"),
    [
        (
            {"model": "veo-3.1-fast", "resolution": "720p", "aspect_ratio": "16:9", "duration": 8},
            "veo",
            {"duration": 8, "resolution": "720p", "aspect_ratio": "16:9"},
        ),
        ({"model": "kling-video-2-6", "mode": "standard", "duration": 5}, "kling", {"aspect_ratio": "16:9"}),
        ({"model": "seedance-2", "mode": "fast", "resolution": "720p"}, "seedance", {"duration": 5}),
        ({"model": "grok-3", "resolution": "480p", "duration": 6}, "grok", {"aspect_ratio": "landscape"}),
        ({"model": "sora-2-pro-hd", "resolution": "large", "duration": 15}, "sora", {"aspect_ratio": "landscape"}),
    ],
)
def test_request_of_each_family_is_valid_with_its_defaults_filled(body, family, filled) -> None:
    request = valid({"prompt": "a lighthouse at dawn", **body})
    assert request.family == family
    assert filled.items() <= request.settings().items()


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"model": "sora-2", "mode": "standard"}, "mode", "it takes duration, resolution, aspect_ratio"),
        ({"model": "veo-3.1", "resolution": "small"}, "resolution", "it takes 720p, 1080p"),
        ({"model": "kling-video-2-6", "aspect_ratio": "landscape"}, "aspect_ratio", "it takes 16:9, 9:16, 1:1"),
        ({"model": "sora-3"}, "model", "this stack takes sora-2, sora-2-pro"),
        ({"model": "kling-video-3-0", "mode": "relax"}, "mode", "it takes standard, professional"),
        ({"model": "veo-3.1", "files": ["s3://b/k.png"]}, "files", "its references are ref_images"),
        ({"model": "veo-3.1", "mode_image": "frame"}, "mode_image", "only with ref_images"),
        ({"model": "grok-3", "duration": "6"}, "duration", "Input should be a valid integer"),
        (
            {"model": "kling-video-2-6", "ref_images": ["s3://b/k.png"] * 5},
            "ref_images",
            "takes at most 4 reference images",
        ),
        (
            {"model": "seedance-2-5-omni", "ref_images": ["s3://b/k.png"] * 15},
            "ref_images",
            "List should have at most 14",
        ),
        ({"model": "seedance-2", "ref_images": ["s3://b/k.png"] * 3}, "ref_images", "at most 2 reference images"),
    ],
)
def test_cross_family_mistake_is_invalid_naming_the_field_and_what_the_model_takes(body, field, says) -> None:
    message = problem({"prompt": "a lighthouse at dawn", **body})
    assert message.startswith(f"{field}: ")
    assert says in message


def test_kling_prompt_shorter_than_its_family_takes_is_invalid() -> None:
    assert problem({"prompt": "a fox", "model": "kling-video-2-6"}).startswith("prompt: kling models take")


def test_omni_model_takes_more_references_than_its_family() -> None:
    assert valid({"prompt": "a fox", "model": "seedance-2-omni", "ref_images": ["s3://b/k.png"] * 4})


def test_request_naming_no_model_is_the_default_models() -> None:
    rules = RequestRules.of(default_model="veo-3.1-fast")
    request = valid({"prompt": "a fox"}, rules=rules)
    assert (request.model, request.family, request.resolution) == ("veo-3.1-fast", "veo", "720p")


def test_extra_model_of_a_known_family_is_checked_by_type_and_family_only() -> None:
    rules = RequestRules.of(extra_models="veo-3.2-preview, kling:kling-video-4-0")
    request = valid({"prompt": "a lighthouse", "model": "veo-3.2-preview", "resolution": "4k"}, rules=rules)
    assert (request.family, request.resolution) == ("veo", "4k")
    assert valid({"prompt": "a lighthouse at dawn", "model": "kling-video-4-0"}, rules=rules).family == "kling"
    assert problem({"prompt": "a lighthouse", "model": "veo-3.2-preview", "mode": "fast"}, rules=rules).startswith(
        "mode: not a field"
    )
    assert problem({"prompt": "a lighthouse", "model": "veo-3.2-preview", "duration": "8"}, rules=rules).startswith(
        "duration: Input should be a valid integer"
    )


@pytest.mark.parametrize("extra", ["dall-e-4", "nobody:model-x"])
def test_extra_model_of_no_known_family_is_refused_at_start(extra) -> None:
    with pytest.raises(ValueError, match="ExtraModels"):
        RequestRules.of(extra_models=extra)


def test_default_model_unknown_to_the_stack_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="DefaultModel"):
        RequestRules.of(default_model="sora-3")


VEO = VideoRequest(prompt="a lighthouse", model="veo-3.1", family="veo", duration=8, resolution="720p")
SORA = VideoRequest(prompt="a lighthouse", model="sora-2", family="sora", duration=10)


def test_extension_follows_the_model_of_the_video_it_extends() -> None:
    request = valid({"prompt": "the camera rises", "extend": {"request_id": "scene-1"}}, earlier=lambda _: VEO)
    assert (request.model, request.family, request.extend.request_id) == ("veo-3.1", "veo", "scene-1")
    assert request.settings() == {}


def test_extension_of_a_sora_video_is_invalid_naming_extend() -> None:
    message = problem({"prompt": "the camera rises", "extend": {"request_id": "scene-1"}}, earlier=lambda _: SORA)
    assert message.startswith("extend: sora videos cannot be extended")


def test_extension_of_an_unknown_request_is_invalid_naming_extend() -> None:
    assert problem({"prompt": "the camera rises", "extend": {"request_id": "nobody"}}).startswith("extend: ")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"model": "veo-3.1"}, "model"),
        ({"resolution": "720p"}, "resolution"),
        ({"ref_images": ["s3://b/k"]}, "ref_images"),
    ],
)
def test_extension_names_no_model_settings_or_references(extra, field) -> None:
    body = {"prompt": "the camera rises", "extend": {"request_id": "scene-1"}, **extra}
    assert problem(body, earlier=lambda _: VEO).startswith(f"{field}: ")


def test_extension_takes_its_familys_extend_fields() -> None:
    kling = VideoRequest(prompt="a lighthouse at dawn", model="kling-video-2-6", family="kling", duration=5)
    body = {"prompt": "the camera rises slowly", "extend": {"request_id": "scene-1"}, "duration": 10}
    assert valid(body, earlier=lambda _: kling).duration == 10


def test_resent_request_reads_as_the_same_request() -> None:
    request = valid({"request_id": "a", "prompt": "a lighthouse", "model": "veo-3.1-fast", "duration": 4})
    again = valid(request.as_message())
    assert again.fingerprint() == request.fingerprint()
    extension = valid({"prompt": "rises", "extend": {"request_id": "scene-1"}}, earlier=lambda _: VEO)
    assert valid(extension.as_message(), earlier=lambda _: VEO).fingerprint() == extension.fingerprint()


def test_family_is_not_a_field_of_a_message() -> None:
    assert problem({"prompt": "a fox", "family": "veo"}) == "family: unknown field"


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"model": "omni-flash", "duration": 10}, True),
        ({"model": "veo-3.1", "duration": 10}, False),  # 10 s is omni-flash's alone
        ({"model": "kling-video-2-1-10s"}, True),
        ({"model": "kling-video-2-1-5s", "duration": 10}, False),  # a fixed-length model
        ({"model": "seedance-2-5-omni", "duration": 30, "mode": "pro-vip"}, True),
        ({"model": "seedance-2", "duration": 30}, False),
        ({"model": "minimax-h3", "ref_images": ["s3://b/k.png"] * 9}, True),
        ({"model": "flux-3", "aspect_ratio": "2:1", "duration": 20}, True),
        ({"model": "grok-3", "mode": "extremely-spicy-or-crazy", "skip_audio": True}, True),
        ({"model": "grok-3", "skip_audio": "yes"}, False),
        ({"model": "grok-lower", "resolution": "1080p", "aspect_ratio": "2:3"}, True),
        ({"model": "grok-lower", "mode": "normal"}, False),
    ],
)
def test_the_models_the_provider_added_in_december_take_their_own_values(body: dict, accepted: bool) -> None:
    parsed = parse_request(json.dumps({"prompt": "a lighthouse at dawn, waves", **body}), "m-1")
    assert isinstance(parsed, ParsedRequest) is accepted, parsed
