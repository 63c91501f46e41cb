"""The published schemas: current with the models, true of what the stack writes and reads."""

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from sora_relay.domain.events import ErrorCode, EventError, ProviderSummary, VideoObject, build_event
from sora_relay.domain.families import parse_request
from sora_relay.domain.request import ParsedRequest, VideoRequest
from sora_relay_tools.schemas import documents, render

from ..support.paths import ROOT

SCHEMAS = ROOT / "events" / "schemas"
NOW = datetime(2026, 11, 23, 21, 40, tzinfo=UTC)
VIDEO = VideoObject(
    bucket="b", key="videos/a.mp4", uri="s3://b/videos/a.mp4", size=3, sha256="ab" * 32, content_type="video/mp4"
)
PROVIDER = ProviderSummary(uuid="sora_1", id=1, estimated_credit=30, expired_at="2026-11-30T21:35:15Z")
REQUEST = VideoRequest.model_validate({"prompt": "a fox", "request_id": "a"})


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def valid(document: object, name: str) -> bool:
    return jsonschema.Draft202012Validator(schema(name)).is_valid(document)


def test_schema_files_are_what_the_models_generate() -> None:
    expected = documents()
    stale = [name for name, document in expected.items() if (SCHEMAS / name).read_text() != render(document)]
    assert stale == [], "run `make schemas` and commit events/schemas/"
    assert sorted(path.name for path in SCHEMAS.glob("*.json")) == sorted(expected)


@pytest.mark.parametrize("name", sorted(documents()))
def test_schema_is_a_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(name))


def test_published_completion_matches_its_schema_only() -> None:
    event = build_event(request_id="a", occurred_at=NOW, request=REQUEST, provider=PROVIDER, metadata={}, video=VIDEO)
    published = json.loads(event.to_json())
    assert valid(published, "video.completed.schema.json")
    assert not valid(published, "video.failed.schema.json")


def test_published_failure_without_a_request_matches_its_schema_only() -> None:
    error = EventError(code=ErrorCode.INVALID_REQUEST, message="prompt: must not be blank")
    event = build_event(request_id="a", occurred_at=NOW, request=None, provider=None, metadata={"k": "v"}, error=error)
    published = json.loads(event.to_json())
    assert valid(published, "video.failed.schema.json")
    assert not valid(published, "video.completed.schema.json")


SAMPLE_REQUESTS = sorted(path.name for path in (ROOT / "events").glob("request*.json"))


@pytest.mark.parametrize("sample", SAMPLE_REQUESTS)
def test_sample_request_is_judged_by_its_schema_as_the_stack_judges_it(sample: str) -> None:
    body = json.loads((ROOT / "events" / sample).read_text())
    veo = VideoRequest(prompt="a lighthouse", model="veo-3.1-fast", family="veo")  # what request-extend.json extends
    stack_takes = isinstance(parse_request(json.dumps(body), "m", earlier=lambda _: veo), ParsedRequest)
    assert valid(body, "request.schema.json") is stack_takes
    assert stack_takes is (sample != "request-invalid.json")


@pytest.mark.parametrize(
    "body", [{"prompt": "   "}, {"prompt": "x", "files": ["ftp://host/a.png"]}, {"prompt": "x", "duration": 12}]
)
def test_request_schema_refuses_what_the_stack_refuses(body: dict) -> None:
    assert not valid(body, "request.schema.json")


@pytest.mark.parametrize("sample", sorted(path.name for path in (ROOT / "events").glob("video-*.json")))
def test_sample_events_match_their_schema(sample: str) -> None:
    event = json.loads((ROOT / "events" / sample).read_text())
    assert valid(event, f"{event['event']}.schema.json")


def test_asyncapi_document_points_at_the_schema_files() -> None:
    document = yaml.safe_load((ROOT / "events" / "asyncapi.yaml").read_text())
    payloads = {name: message["payload"]["$ref"] for name, message in document["components"]["messages"].items()}
    assert payloads == {
        "request": "./schemas/request.schema.json",
        "videoSubmitted": "./schemas/video.submitted.schema.json",
        "videoProgress": "./schemas/video.progress.schema.json",
        "videoCompleted": "./schemas/video.completed.schema.json",
        "videoFailed": "./schemas/video.failed.schema.json",
    }
    assert all((ROOT / "events" / Path(ref)).is_file() for ref in payloads.values())


def test_asyncapi_event_attributes_are_the_published_ones() -> None:
    document = yaml.safe_load((ROOT / "events" / "asyncapi.yaml").read_text())
    attributes = document["components"]["schemas"]["eventAttributes"]["properties"]
    event = build_event(request_id="a", occurred_at=NOW, request=REQUEST, provider=PROVIDER, metadata={}, video=VIDEO)
    assert set(attributes) == set(event.attributes())


# What version 1 promises each event always holds (docs/contract.md, "How the contract evolves"):
# a release may add to these, never take one away.
VERSION_1_REQUIRED = {
    "video.submitted.schema.json": {"version", "event", "event_id", "request_id", "occurred_at", "provider"},
    "video.progress.schema.json": {"version", "event", "event_id", "request_id", "occurred_at", "progress"},
    "video.completed.schema.json": {"version", "event", "event_id", "request_id", "occurred_at", "video"},
    "video.failed.schema.json": {"version", "event", "event_id", "request_id", "occurred_at", "error"},
}


@pytest.mark.parametrize("name", sorted(VERSION_1_REQUIRED))
def test_event_schema_keeps_every_field_version_1_requires(name: str) -> None:
    assert VERSION_1_REQUIRED[name] <= set(schema(name)["required"])


@pytest.mark.parametrize("name", sorted(VERSION_1_REQUIRED))
def test_todays_event_schema_accepts_an_event_with_fields_added_later(name: str) -> None:
    """A subscriber validating with today's schema keeps accepting later releases' events."""
    error = EventError(code=ErrorCode.GENERATION_FAILED, message="status 3")
    failed = name == "video.failed.schema.json"
    event = build_event(
        request_id="a",
        occurred_at=NOW,
        request=REQUEST,
        provider=PROVIDER,
        metadata={},
        video=None if failed else VIDEO,
        error=error if failed else None,
    )
    published = json.loads(event.to_json())
    if name in ("video.submitted.schema.json", "video.progress.schema.json"):
        published = {key: value for key, value in published.items() if key not in ("video", "error")}
        published["event"] = name.removesuffix(".schema.json")
        published["progress"] = 40
    grown = {**published, "a_field_of_a_later_release": {"any": "thing"}}
    for nested in ("provider", "request", "video", "error"):
        if isinstance(grown.get(nested), dict):
            grown[nested] = {**grown[nested], "added_later": 1}
    assert valid(grown, name)


def test_the_apis_openapi_document_in_docs_is_what_the_api_serves() -> None:
    from sora_relay_tools.openapi import api_document
    from sora_relay_tools.openapi import render as render_openapi

    assert (ROOT / "docs" / "openapi.json").read_text() == render_openapi(api_document()), "run `make schemas`"
