"""Whatever arrives on the queue: a clear invalid_request naming a field, or a valid request; never a crash."""

import json
import re
import string
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_relay.domain.events import MAX_ERROR_MESSAGE_BYTES, MAX_EVENT_BYTES, ErrorCode, EventError, ProviderSummary
from sora_relay.domain.events import VideoObject as StoredVideo
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.provider import Accepted
from sora_relay.domain.request import MAX_METADATA_BYTES, MAX_PROMPT_CHARS, VideoRequest
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.fakes import START, World, record

FIELDS = sorted(VideoRequest.model_fields)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
hostile_files = st.lists(
    st.sampled_from(
        [
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "s3://",
            "s3://bucket",
            "https://",
            "gopher://x",
            "\u202ehttps://evil",
            "javascript:alert(1)",
        ]
    )
    | st.text(max_size=40),
    min_size=1,
    max_size=6,
)
bodies = st.one_of(
    st.text(),  # not JSON at all, or JSON that is not an object
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from([*FIELDS, "reslution", "callback_url", ""]), json_values).map(json.dumps),
    st.fixed_dictionaries(
        {"prompt": st.text(alphabet=string.printable + "\u0000\u202e\U0001f600\ud7ff", max_size=6000)},
        optional={"files": hostile_files, "duration": json_values, "metadata": json_values},
    ).map(json.dumps),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=bodies)
def test_any_body_ends_as_a_valid_submission_or_a_named_invalid_request(body: str) -> None:
    world = World()
    assert world.submitter.handle(InboundMessage("m-1", body)) == Done()
    if world.provider.submitted:
        assert len(world.provider.submitted) == 1
        assert world.publisher.finals == []
        return
    [event] = world.publisher.finals
    assert event.error is not None
    assert event.error.code == "invalid_request"
    if event.error.message.startswith("the message body"):
        return  # not JSON, or not an object: no field to name
    names = {*FIELDS, *(key or '""' for key in json.loads(body))}
    for part in event.error.message.split("; "):
        if re.fullmatch(r"and \d+ more problems", part):
            continue
        assert any(part.startswith((f"{name}:", f"{name}.", f"{name}[")) for name in names), part


@settings(max_examples=100, deadline=None)
@given(files=hostile_files)
def test_hostile_files_never_reach_the_provider(files: list[str]) -> None:
    world = World()
    world.submitter.handle(InboundMessage("m-1", json.dumps({"prompt": "a fox", "files": files})))
    if world.provider.submitted:
        # Only entries of the right form get this far; the fetcher's policy then judges them.
        assert all(uri.startswith(("s3://", "https://")) for uri in files)
    else:
        [event] = world.publisher.finals
        assert event.error.message.startswith("files")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


raw_bodies = st.one_of(
    st.binary(max_size=2_000).map(lambda raw: raw.decode("utf-8", "replace")),
    st.integers(1, 60_000).map(nested),
    st.integers(1, 60_000).map(lambda depth: '{"prompt": "a", "metadata": ' + nested(depth) + "}"),
    st.integers(1, 30_000).map(lambda width: json.dumps({"prompt": "a", **{f"f{i}": i for i in range(width)}})),
    st.integers(1, 10_000).map(
        lambda width: json.dumps({"prompt": "a", "metadata": dict.fromkeys(map(str, range(width)), 0)})
    ),
    st.text(min_size=1, max_size=3).map(lambda key: json.dumps({"prompt": "a", key * 50_000: 1})),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=raw_bodies)
def test_raw_deep_or_wide_body_ends_in_one_small_invalid_request_event(body: str) -> None:
    world = World()
    assert world.submitter.handle(InboundMessage("m-1", body)) == Done()
    if world.provider.submitted:  # random bytes that happen to be a valid request
        assert world.publisher.finals == []
        return
    [event] = world.publisher.finals
    assert event.error is not None
    assert event.error.code == "invalid_request"
    assert len(event.to_json().encode()) < MAX_EVENT_BYTES


def test_largest_possible_event_is_far_under_the_sns_limit() -> None:
    """Every field at its longest, in its most expensive form: control characters in the
    prompt take six bytes each as JSON, and metadata may use its whole allowance."""
    world = World()
    world.provider.outcomes = [Accepted(record(status=1, estimated_credit=10**15))]
    request_id = "r" * 128
    metadata = {"k": "\u0001" * 300}
    metadata |= {"x" * (MAX_METADATA_BYTES - len(json.dumps(metadata, ensure_ascii=False)) - 8): ""}
    request = VideoRequest(prompt="\u0001" * MAX_PROMPT_CHARS, request_id=request_id, metadata=metadata)
    job = Job(
        request_id=request_id,
        state=JobState.COMPLETED,
        fingerprint="f",
        created_at=START,
        updated_at=START,
        request=request,
        metadata=request.metadata,
        provider=ProviderSummary(uuid="u" * 64, id=2**62, estimated_credit=10**15, expired_at="2026-11-25T00:00:00Z"),
    )
    video = StoredVideo(
        bucket="b" * 63,
        key="k" * 1024,
        uri="s3://" + "b" * 63 + "/" + "k" * 1024,
        size=2**40,
        sha256="0" * 64,
        content_type="video/mp4",
    )
    error = EventError(code=ErrorCode.GENERATION_FAILED, message="\u0001" * 100_000)
    for ended in (
        world.finisher.final_version(job, datetime.now(), video=video),
        world.finisher.final_version(job, datetime.now(), error=error),
    ):
        assert ended.final_event is not None
        assert len(ended.final_event.to_json().encode()) < MAX_EVENT_BYTES


@pytest.mark.parametrize("text", ["x" * 100_000, "\u00e9" * 100_000, "\U0001f600" * 100_000])
def test_error_message_is_capped_in_bytes(text: str) -> None:
    message = EventError(code=ErrorCode.PROVIDER_REJECTED, message=text).message
    assert len(message.encode()) <= MAX_ERROR_MESSAGE_BYTES
    assert message.endswith("[...]")


def test_malformed_reference_reserves_nothing_and_valid_requests_behind_it_are_submitted() -> None:
    world = World(daily_credit_budget=400)
    world.provider.outcomes = [Accepted(record(status=1, estimated_credit=100)) for _ in range(3)]
    body = {"request_id": "bad", "prompt": "a fox", "files": ["https://example.com:abc/x.png"]}
    assert world.submitter.handle(InboundMessage("m-bad", json.dumps(body))) == Done()
    for n in range(3):
        valid = {"request_id": f"ok-{n}", "prompt": f"fox {n}"}
        assert world.submitter.handle(InboundMessage(f"m-{n}", json.dumps(valid))) == Done()
    [event] = world.publisher.finals
    assert event.error is not None
    assert event.error.message.startswith("files[0]: ")
    assert len(world.provider.submitted) == 3
    assert world.ledger.day(START.date()).spent == 300


def test_reference_the_policy_refuses_ends_invalid_before_any_reservation() -> None:
    world = World(daily_credit_budget=400)
    world.files.refused["https://evil.example/x.png"] = "host evil.example is not in the allowed hosts"
    body = {"prompt": "a fox", "model": "veo-3.1", "ref_images": ["s3://refs/ok.png", "https://evil.example/x.png"]}
    world.submitter.handle(InboundMessage("m-1", json.dumps(body)))
    [event] = world.publisher.finals
    assert event.error is not None
    assert event.error.message == "ref_images[1]: host evil.example is not in the allowed hosts"
    assert (world.files.fetched, world.ledger.spent) == ([], {})


def test_unforeseen_fetch_failure_gives_the_reservation_back() -> None:
    world = World(daily_credit_budget=400)
    world.ledger.quoted["sora-2:10:small"] = 100
    world.files.failures["https://cdn.example/x.png"] = RuntimeError("a bug in the fetch")
    body = {"prompt": "a fox", "files": ["https://cdn.example/x.png"]}
    with pytest.raises(RuntimeError):
        world.submitter.handle(InboundMessage("m-1", json.dumps(body)))
    assert world.ledger.day(START.date()).spent == 0
    assert world.provider.submitted == []
