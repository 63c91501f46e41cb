"""The HTTP API on the local stack, through the official `openai` SDK as its users run it (only
`base_url` and `api_key` set): a video made, polled, downloaded, listed and deleted; another key
sees none of it; an Idempotency-Key repeated makes one generation; a fallback given over HTTP
completes on its fallback; an uploaded reference reaches the provider. And webhooks, as a
receiver verifies them with the Standard Webhooks library."""

import hashlib
import time
import warnings
from collections.abc import Iterator

import httpx
import openai
import pytest

from sora_relay.domain.webhooks import shown_secret
from sora_relay_tools.local.stack import LocalStack
from sora_relay_tools.simulator import GeminiGenSimulator

from ..support.local import local_stack
from ..support.receiver import WebhookReceiver

# The SDK marks its video calls deprecated since OpenAI's own shutdown; they work against the relay.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
POLL_MS = 500  # the SDK's own poll interval (the stack advises its PollIntervalSeconds: 1 s here)


@pytest.fixture(scope="module")
def stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    # Webhooks to the receiver on loopback (http): CallbacksAllowPrivate, as a local stack has it.
    with local_stack(module_simulator, CallbacksAllowPrivate="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def receiver(stack: LocalStack) -> Iterator[WebhookReceiver]:
    """Refuses each event's first delivery (503): every event comes again, after its backoff."""
    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.outputs["WebhookSecretArn"])
    receiver = WebhookReceiver(shown_secret(secret["SecretString"].encode()), refuse_first=1)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module", autouse=True)
def hooked(stack: LocalStack, alice: openai.OpenAI, receiver: WebhookReceiver) -> dict[str, str]:
    """Requests that name the receiver, sent as the module starts: their webhooks (each refused
    once, then retried after its backoff) arrive while the other tests run."""
    over_http = alice.videos.create(
        model="kling-video-2-6",
        prompt="a heron fishing at dusk",
        extra_body={"callback_url": receiver.url, "metadata": {"order": "o-1"}},
    )
    stack.send({"request_id": "sqs-hook-1", "prompt": "a tram in fog, slowly", "callback_url": receiver.url})
    return {"http": over_http.id, "sqs": "sqs-hook-1"}


def verified_events(receiver: WebhookReceiver, request_id: str, count: int, timeout: float = 45) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(receiver.verified(request_id)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return receiver.verified(request_id)


def sdk(stack: LocalStack, key_name: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=stack.create_key(key_name), base_url=stack.outputs["ApiUrl"], max_retries=0)


@pytest.fixture(scope="module")
def alice(stack: LocalStack) -> openai.OpenAI:
    return sdk(stack, "alice")


def test_the_sdk_makes_downloads_lists_and_deletes_a_veo_video(stack, alice, module_simulator) -> None:
    video = alice.videos.create_and_poll(
        model="veo-3.1-fast", prompt="a lighthouse at dawn", seconds="8", size="1280x720", poll_interval_ms=POLL_MS
    )
    assert (video.status, video.model, video.seconds, video.size, video.progress) == (
        "completed",
        "veo-3.1-fast",
        "8",
        "1280x720",
        100,
    )
    [generation] = module_simulator.submissions("a lighthouse at dawn")
    assert (generation.model, generation.settings["resolution"], generation.settings["aspect_ratio"]) == (
        "veo-3.1-fast",
        "720p",
        "16:9",
    )
    content = alice.videos.download_content(video.id).read()
    assert content == module_simulator.video_bytes(generation)
    assert hashlib.sha256(content).hexdigest() == video.model_extra["video"]["sha256"]  # type: ignore[index]
    assert video.id in [listed.id for listed in alice.videos.list()]
    deleted = alice.videos.delete(video.id)
    assert (deleted.id, deleted.deleted) == (video.id, True)
    with pytest.raises(openai.NotFoundError):
        alice.videos.download_content(video.id)


def test_another_key_sees_none_of_a_keys_videos(stack, alice) -> None:
    video = alice.videos.create(model="veo-3.1-fast", prompt="a kite over dunes", seconds="4")
    bob = sdk(stack, "bob")
    assert [listed.id for listed in bob.videos.list()] == []
    for call in (bob.videos.retrieve, bob.videos.download_content, bob.videos.delete):
        with pytest.raises(openai.NotFoundError):
            call(video.id)
    assert alice.videos.retrieve(video.id).id == video.id


def test_a_repeated_idempotency_key_answers_the_same_video_and_makes_one_generation(
    stack, alice, module_simulator
) -> None:
    headers = {"Idempotency-Key": "order-7781"}
    first = alice.videos.create(model="kling-video-2-6", prompt="a red fox in snow, slowly", extra_headers=headers)
    again = alice.videos.create(model="kling-video-2-6", prompt="a red fox in snow, slowly", extra_headers=headers)
    assert first.id == again.id == "order-7781"
    done = alice.videos.poll(first.id, poll_interval_ms=POLL_MS)
    assert done.status == "completed"
    assert len(module_simulator.submissions("a red fox in snow, slowly")) == 1
    with pytest.raises(openai.ConflictError):  # the same key with another body
        alice.videos.create(model="kling-video-2-6", prompt="a grey wolf in snow, slowly", extra_headers=headers)


def test_a_fallback_given_over_http_completes_on_its_fallback(stack, alice, module_simulator) -> None:
    prompt = "a choir sings in a cave [audio-filtered] over http"
    video = alice.videos.create_and_poll(
        model="veo-3.1-fast", prompt=prompt, extra_body={"fallback": ["kling-video-2-6"]}, poll_interval_ms=POLL_MS
    )
    assert (video.status, video.model) == ("completed", "kling-video-2-6")
    assert [attempt["model"] for attempt in video.model_extra["attempts"]] == ["veo-3.1-fast", "kling-video-2-6"]  # type: ignore[index]
    assert [g.model for g in module_simulator.submissions(prompt)] == ["veo-3.1-fast", "kling-video-2-6"]


def test_an_uploaded_input_reference_reaches_the_provider(stack, alice, module_simulator) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    video = alice.videos.create_and_poll(
        model="veo-3.1-fast",
        prompt="the pictured robot waves",
        input_reference=("robot.png", image, "image/png"),
        poll_interval_ms=POLL_MS,
    )
    assert video.status == "completed"
    [generation] = module_simulator.submissions("the pictured robot waves")
    assert generation.file_digests == [hashlib.sha256(image).hexdigest()]


def test_a_size_the_model_cannot_make_is_a_400_naming_size(alice) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        alice.videos.create(model="veo-3.1-fast", prompt="a quiet harbour", size="1024x1792")
    assert refused.value.body["param"] == "size"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as too_long:
        alice.videos.create(model="veo-3.1-fast", prompt="a quiet harbour", seconds="12")
    assert too_long.value.body["param"] == "seconds"  # type: ignore[index]


def test_no_key_or_a_revoked_key_is_refused_with_401(stack) -> None:
    api = stack.outputs["ApiUrl"]
    assert httpx.get(f"{api}/videos").status_code == 401
    revoked = sdk(stack, "carol")
    stack.revoke_key("carol")
    with pytest.raises(openai.AuthenticationError):
        revoked.videos.list()


def test_the_openapi_document_is_served(stack) -> None:
    with warnings.catch_warnings():
        document = httpx.get(f"{stack.outputs['ApiUrl']}/openapi.json").json()
    assert {"/v1/videos", "/v1/videos/{video_id}", "/v1/videos/{video_id}/content"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"seconds", "size", "prompt", "callback_url", "fallback"} <= set(schemas["CreateVideoBody"]["properties"])
    body = document["paths"]["/v1/videos"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body == {"$ref": "#/components/schemas/CreateVideoBody"}
    assert "Video" in schemas
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_errors_come_in_openais_shape(stack) -> None:
    api = stack.outputs["ApiUrl"]
    headers = {"Authorization": f"Bearer {stack.create_key('erin')}", "Content-Type": "application/json"}
    bad = httpx.post(f"{api}/videos", headers=headers, content=b"{not json")
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"message", "type", "param", "code"}
    unknown = httpx.get(f"{api}/videos/x/remix", headers=headers)
    assert (unknown.status_code, unknown.json()["error"]["type"]) == (404, "not_found_error")


def test_a_key_past_its_calls_per_minute_is_told_when_to_come_back(stack) -> None:
    headers = {"Authorization": f"Bearer {stack.create_key('frank')}"}
    stack.driver.configure({"API_CALLS_PER_MINUTE": "2"})
    try:
        # Five calls: should a minute turn among them, one of the two minutes still has three.
        answers = [httpx.get(f"{stack.outputs['ApiUrl']}/videos", headers=headers) for _ in range(5)]
    finally:
        stack.driver.configure({"API_CALLS_PER_MINUTE": "120"})
    assert {answer.status_code for answer in answers} == {200, 429}
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_every_event_of_a_request_made_over_http_reaches_its_callback_signed(receiver, hooked) -> None:
    events = verified_events(receiver, hooked["http"], 2)
    assert [event["event"] for event in events] == ["video.submitted", "video.completed"]
    assert {(event["key"], event["metadata"]["order"]) for event in events} == {("alice", "o-1")}
    for event in events:
        assert receiver.attempts[event["event_id"]] == 2  # refused once, delivered after its backoff


def test_a_request_sent_over_sqs_with_a_callback_gets_its_events_too(receiver, hooked) -> None:
    events = verified_events(receiver, hooked["sqs"], 2)
    assert [event["event"] for event in events] == ["video.submitted", "video.completed"]
    assert "key" not in events[0]
