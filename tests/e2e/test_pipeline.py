"""A request through all three functions, with moto as AWS and the simulator as the provider."""

import hashlib
import json

from sora_relay.domain.events import VideoEvent
from sora_relay_tools.simulator import Fault

from ..support.aws import API_KEY
from ..support.local import run_until_events
from ..support.paths import ROOT

EVENTS = ROOT / "events"


def test_request_ends_as_an_archived_video_and_one_completed_event(stack, simulator, functions) -> None:
    request = json.loads((EVENTS / "request.json").read_text())
    stack.send_request(request)
    [event] = run_until_events(stack, functions, 1)
    body = VideoEvent.model_validate(event["body"])
    [generation] = simulator.submissions()
    assert body.event == "video.completed"
    assert body.event_id == "ad-2291:video.completed"
    assert body.request.prompt == request["prompt"]
    assert body.provider.uuid == generation.uuid
    assert body.metadata == {"campaign": "spring"}
    assert body.video.key == "videos/ad-2291.mp4"
    made = simulator.video_bytes(generation)
    assert body.video.sha256 == hashlib.sha256(made).hexdigest()
    stored = stack.s3.get_object(Bucket=stack.bucket, Key="videos/ad-2291.mp4")
    assert stored["Body"].read() == made
    assert stored["Metadata"]["sha256"] == body.video.sha256
    assert stored["ContentType"] == "video/mp4"
    assert event["attributes"] == {
        "event": "video.completed",
        "request_id": "ad-2291",
        "model": "sora-2",
        "family": "sora",
    }
    assert stack.job("ad-2291")["state"]["S"] == "archived"


def test_generation_failure_ends_as_generation_failed(stack, simulator, functions) -> None:
    stack.send_request({"request_id": "f-1", "prompt": "[fail] a storm"})
    [event] = run_until_events(stack, functions, 1)
    assert event["body"]["error"]["code"] == "generation_failed"
    assert "status 3; PUBLIC_ERROR_UNSAFE_CONTENT" in event["body"]["error"]["message"]
    assert event["body"]["provider"]["uuid"] == simulator.submissions()[0].uuid
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 0


def test_expired_address_ends_as_expired(stack, simulator, functions) -> None:
    simulator.expire_after = -simulator.expire_after
    stack.send_request({"request_id": "e-1", "prompt": "a slow sunrise"})
    [event] = run_until_events(stack, functions, 1)
    assert event["body"]["error"]["code"] == "expired"
    assert "not copied before its expired_at" in event["body"]["error"]["message"]
    assert len(simulator.submissions()) == 1


def test_rate_limited_submission_completes_once(stack, simulator, functions) -> None:
    simulator.inject("submit", Fault(status=429, retry_after="0"))
    stack.send_request({"request_id": "r-1", "prompt": "a red kite over hills"})
    [event] = run_until_events(stack, functions, 1)
    assert event["body"]["event"] == "video.completed"
    assert len(simulator.submissions()) == 1


def test_api_key_appears_in_no_log_line_or_event_even_at_debug(stack, simulator, functions, captured_logs) -> None:
    simulator.inject("submit", Fault(status=401))
    stack.send_request({"request_id": "k-1", "prompt": "a quiet harbour"})
    events = run_until_events(stack, functions, 1)
    logs = captured_logs.getvalue()
    assert "a quiet harbour" in logs  # the prompt, at DEBUG: the capture works
    assert "the provider refused the account (HTTP 401): API_KEY_NOT_FOUND" in logs
    assert API_KEY not in logs
    assert all(API_KEY not in json.dumps(event) for event in events)
