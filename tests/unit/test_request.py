import json

import pytest

from sora_relay.domain.families import parse_request
from sora_relay.domain.request import (
    MAX_LISTED_PROBLEMS,
    MAX_PROMPT_CHARS,
    InvalidRequest,
    ParsedRequest,
)


def parse(body: object) -> ParsedRequest | InvalidRequest:
    return parse_request(body if isinstance(body, str) else json.dumps(body), "msg-1")


def invalid(body: object) -> InvalidRequest:
    result = parse(body)
    assert isinstance(result, InvalidRequest), result
    return result


def test_minimal_request_takes_the_contract_defaults() -> None:
    result = parse({"prompt": "a fox"})
    assert isinstance(result, ParsedRequest)
    assert result.request.model_dump(mode="json", exclude={"prompt"}, exclude_none=True) == {
        "model": "sora-2",
        "family": "sora",
        "priority": "normal",
        "duration": 10,
        "resolution": "small",
        "aspect_ratio": "landscape",
        "metadata": {},
    }


def test_request_id_defaults_to_the_message_id() -> None:
    result = parse({"prompt": "a fox"})
    assert isinstance(result, ParsedRequest)
    assert result.request_id == "msg-1"


def test_given_request_id_is_the_job_key() -> None:
    result = parse({"prompt": "a fox", "request_id": "ad-2291"})
    assert isinstance(result, ParsedRequest)
    assert result.request_id == "ad-2291"


def test_unknown_field_is_named() -> None:
    assert invalid({"prompt": "a fox", "reslution": "large"}).message == "reslution: unknown field"


def test_body_that_is_not_json_is_invalid() -> None:
    assert invalid("{not json").message == "the message body is not valid JSON"


def test_body_that_is_not_an_object_is_invalid() -> None:
    assert invalid([1, 2]).message == "the message body must be a JSON object"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
        ({"prompt": "a", "model": "sora-3"}, "model"),
        ({"prompt": "a", "duration": 12}, "duration"),
        ({"prompt": "a", "duration": "10"}, "duration"),
        ({"prompt": "a", "resolution": "medium"}, "resolution"),
        ({"prompt": "a", "aspect_ratio": "square"}, "aspect_ratio"),
        ({"prompt": "a", "files": ["s3://b/k"] * 2}, "files"),
        ({"prompt": "a", "files": "s3://b/k"}, "files"),
        ({"prompt": "a", "files": ["ftp://host/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["s3://bucket-only"]}, "files[0]"),
        ({"prompt": "a", "files": ["s3://b/k"] * 5}, "files"),
        ({"prompt": "a", "metadata": {"n": 1}}, "metadata.n"),
        ({"prompt": "a", "metadata": {"k": "v" * 3000}}, "metadata"),
        ({"prompt": "a", "request_id": "has space"}, "request_id"),
        ({"prompt": "a", "request_id": "x" * 129}, "request_id"),
        ({"prompt": "a", "files": ["https://[::1/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://example.com:abc/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://example.com:99999/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://xn--a.com/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://-bad-.example/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://a..b/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https:///x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://exa mple.com/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["https://example.com/" + "x" * 2100]}, "files[0]"),
    ],
)
def test_each_broken_rule_names_its_field(body: dict[str, object], field: str) -> None:
    assert invalid(body).message.startswith(f"{field}: ")


def test_invalid_message_keeps_a_readable_request_id() -> None:
    assert invalid({"request_id": "ad-1", "prompt": ""}).request_id == "ad-1"


def test_invalid_message_with_unreadable_request_id_uses_the_message_id() -> None:
    assert invalid({"request_id": 42, "prompt": "a"}).request_id == "msg-1"


def test_invalid_message_echoes_well_formed_metadata() -> None:
    assert invalid({"prompt": "", "metadata": {"campaign": "spring"}}).metadata == {"campaign": "spring"}


def test_fingerprint_ignores_request_id_and_spelled_out_defaults() -> None:
    first = parse({"prompt": "a fox", "request_id": "one"})
    second = parse({"prompt": "a fox", "model": "sora-2", "duration": 10})
    assert isinstance(first, ParsedRequest)
    assert isinstance(second, ParsedRequest)
    assert first.request.fingerprint() == second.request.fingerprint()


def test_fingerprint_differs_when_the_prompt_does() -> None:
    first = parse({"prompt": "a fox"})
    second = parse({"prompt": "a wolf"})
    assert isinstance(first, ParsedRequest)
    assert isinstance(second, ParsedRequest)
    assert first.request.fingerprint() != second.request.fingerprint()


@pytest.mark.parametrize(
    "uri",
    [
        "https://cdn.example.com/x.png",
        "https://café.example/x.png",
        "https://[2001:db8::1]:8443/x",
        "https://a_b.example/x",
    ],
)
def test_well_formed_https_reference_is_valid(uri: str) -> None:
    assert isinstance(parse_request(json.dumps({"prompt": "a", "files": [uri]}), "msg-1"), ParsedRequest)


def test_deeply_nested_body_is_invalid_not_a_crash() -> None:
    assert invalid("[" * 30_000 + "]" * 30_000).message == "the message body is not valid JSON"


def test_deeply_nested_field_is_invalid_not_a_crash() -> None:
    body = '{"prompt": "a", "metadata": ' + "[" * 30_000 + "]" * 30_000 + "}"
    assert invalid(body).message == "the message body is not valid JSON"


def test_error_lists_the_first_problems_and_counts_the_rest() -> None:
    message = invalid({"prompt": "a", **{f"field{i}": 1 for i in range(20_000)}}).message
    assert message.endswith(f"; and {20_000 - MAX_LISTED_PROBLEMS} more problems")
    assert message.count("unknown field") == MAX_LISTED_PROBLEMS


def test_error_shortens_a_huge_field_name() -> None:
    message = invalid({"prompt": "a", "k" * 100_000: 1}).message
    assert len(message) < 200


def test_invalid_metadata_is_never_echoed() -> None:
    invalid_request = invalid({"prompt": "a", "metadata": {f"k{i}": i for i in range(6_000)}})
    assert invalid_request.metadata == {}


def test_a_callback_url_is_kept_with_the_request_and_carried_to_its_fallback() -> None:
    from sora_relay.domain.families import RequestRules, next_attempt

    body = {
        "prompt": "a red fox runs",
        "model": "veo-3.1-fast",
        "callback_url": "https://hooks.example/v",
        "fallback": ["kling-video-2-6"],
    }
    result = parse(body)
    assert isinstance(result, ParsedRequest)
    assert result.request.callback_url == "https://hooks.example/v"
    fallback = next_attempt(result.request, RequestRules.of())
    assert fallback is not None
    assert (fallback.model, fallback.callback_url) == ("kling-video-2-6", "https://hooks.example/v")


@pytest.mark.parametrize("url", ["ftp://hooks.example/v", "hooks.example/v", "https://", "https://bad host/v"])
def test_a_callback_url_that_is_no_https_address_is_invalid(url: str) -> None:
    assert invalid({"prompt": "a fox", "callback_url": url}).message.startswith("callback_url: ")


def test_an_http_callback_is_invalid_unless_the_stack_allows_private_receivers() -> None:
    from sora_relay.domain.families import RequestRules

    body = json.dumps({"prompt": "a fox", "callback_url": "http://127.0.0.1:8080/hooks"})
    refused = parse_request(body, "m-1", RequestRules.of())
    assert isinstance(refused, InvalidRequest)
    assert refused.message == "callback_url: must be an https:// address"
    assert isinstance(parse_request(body, "m-1", RequestRules.of(callbacks_allow_private=True)), ParsedRequest)
