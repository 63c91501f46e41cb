import json

import pytest

from sora_relay.request import MAX_PROMPT_CHARS, InvalidRequest, ParsedRequest, parse_request


def parse(body: object) -> ParsedRequest | InvalidRequest:
    return parse_request(body if isinstance(body, str) else json.dumps(body), "msg-1")


def invalid(body: object) -> InvalidRequest:
    result = parse(body)
    assert isinstance(result, InvalidRequest), result
    return result


def test_minimal_request_takes_the_contract_defaults() -> None:
    result = parse({"prompt": "a fox"})
    assert isinstance(result, ParsedRequest)
    assert result.request.model_dump(mode="json", exclude={"prompt"}) == {
        "request_id": None,
        "model": "sora-2",
        "duration": 10,
        "resolution": "small",
        "aspect_ratio": "landscape",
        "files": [],
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
        ({"prompt": "a", "files": "s3://b/k"}, "files"),
        ({"prompt": "a", "files": ["ftp://host/x.png"]}, "files[0]"),
        ({"prompt": "a", "files": ["s3://bucket-only"]}, "files[0]"),
        ({"prompt": "a", "files": ["s3://b/k"] * 5}, "files"),
        ({"prompt": "a", "metadata": {"n": 1}}, "metadata.n"),
        ({"prompt": "a", "metadata": {"k": "v" * 3000}}, "metadata"),
        ({"prompt": "a", "request_id": "has space"}, "request_id"),
        ({"prompt": "a", "request_id": "x" * 129}, "request_id"),
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
