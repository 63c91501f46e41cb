import pytest

from sora_relay.adapters.geminigen import GeminiGenClient, make_http_client
from sora_relay.ports import ReferenceFile
from sora_relay.provider import Accepted, ProviderUnavailable, Rejected, RetryLater
from sora_relay.request import VideoRequest
from sora_relay.simulator import Fault, GeminiGenSimulator

REQUEST = VideoRequest.model_validate_json(
    '{"prompt": "a fox in the snow", "model": "sora-2-pro", "duration": 15, "resolution": "large"}'
)


@pytest.fixture
def client(simulator: GeminiGenSimulator) -> GeminiGenClient:
    return GeminiGenClient(make_http_client(timeout=2), simulator.base_url, lambda: simulator.api_key)


def test_submission_is_multipart_with_the_provider_field_names(client, simulator) -> None:
    outcome = client.submit(REQUEST, [ReferenceFile("ref.png", "image/png", b"\x89PNG")])
    assert isinstance(outcome, Accepted)
    [generation] = simulator.submissions()
    assert generation.fields == {
        "prompt": "a fox in the snow",
        "model": "sora-2-pro",
        "duration": "15",
        "resolution": "large",
        "aspect_ratio": "landscape",
    }
    assert generation.file_names == ["ref.png"]
    assert outcome.record.uuid == generation.uuid


def test_refused_request_is_rejected_with_the_provider_reason(client, simulator) -> None:
    simulator.inject("submit", Fault(status=422))
    outcome = client.submit(REQUEST, [])
    assert outcome == Rejected(422, "injected HTTP 422")


def test_rate_limit_is_retryable_after_retry_after(client, simulator) -> None:
    simulator.inject("submit", Fault(status=429, retry_after="17"))
    assert client.submit(REQUEST, []) == RetryLater("the provider answered HTTP 429", 17.0)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_retryable(client, simulator, status: int) -> None:
    simulator.inject("submit", Fault(status=status))
    assert isinstance(client.submit(REQUEST, []), RetryLater)
    assert simulator.submissions() == []


def test_slow_answer_is_retryable(simulator) -> None:
    slow = GeminiGenClient(make_http_client(timeout=0.2), simulator.base_url, lambda: simulator.api_key)
    simulator.inject("submit", Fault(delay=0.5, status=503))
    assert slow.submit(REQUEST, []) == RetryLater("the provider did not answer in time")


def test_wrong_key_waits_for_the_operator(simulator) -> None:
    wrong = GeminiGenClient(make_http_client(), simulator.base_url, lambda: "wrong")
    outcome = wrong.submit(REQUEST, [])
    assert isinstance(outcome, RetryLater)
    assert "API key" in outcome.reason
    assert "wrong" not in outcome.reason


def test_unreadable_success_is_never_sent_again(client, simulator) -> None:
    simulator.inject("submit", Fault(malformed=True))
    outcome = client.submit(REQUEST, [])
    assert isinstance(outcome, Rejected)
    assert "not resubmitted" in outcome.message


def test_unreachable_provider_is_retryable() -> None:
    # Nothing listens on the discard port of loopback.
    gone = GeminiGenClient(make_http_client(connect_retries=0), "http://127.0.0.1:9", lambda: "key")
    assert isinstance(gone.submit(REQUEST, []), RetryLater)


def test_status_of_a_running_generation(client, simulator) -> None:
    simulator.generation_seconds = 60
    outcome = client.submit(REQUEST, [])
    assert isinstance(outcome, Accepted)
    record = client.status(outcome.record.uuid)
    assert record.status == 1
    assert not record.ready


def test_status_of_a_finished_generation_has_its_address(client, simulator) -> None:
    outcome = client.submit(REQUEST, [])
    assert isinstance(outcome, Accepted)
    record = client.status(outcome.record.uuid)
    assert record.ready
    assert record.video_url == f"{simulator.base_url}/media/{outcome.record.uuid}.mp4"


def test_status_2_before_the_address_is_not_ready(client, simulator) -> None:
    simulator.address_delay_checks = 1
    outcome = client.submit(REQUEST, [])
    assert isinstance(outcome, Accepted)
    assert not client.status(outcome.record.uuid).ready
    assert client.status(outcome.record.uuid).ready


def test_status_rate_limit_carries_retry_after(client, simulator) -> None:
    simulator.inject("status", Fault(status=429, retry_after="30"))
    with pytest.raises(ProviderUnavailable) as raised:
        client.status("sora_x")
    assert raised.value.retry_after == 30.0


def test_unreadable_status_answer_is_unavailable(client, simulator) -> None:
    simulator.inject("status", Fault(malformed=True))
    with pytest.raises(ProviderUnavailable, match="could not be read"):
        client.status("sora_x")


def test_connection_reset_on_submit_is_retryable(client, simulator) -> None:
    simulator.inject("submit", Fault(reset=True))
    assert isinstance(client.submit(REQUEST, []), RetryLater)
    assert simulator.submissions() == []


def test_connection_reset_on_status_is_unavailable(client, simulator) -> None:
    simulator.inject("status", Fault(reset=True))
    with pytest.raises(ProviderUnavailable):
        client.status("sora_x")


def test_unexpected_status_answer_is_read_as_still_running(client, simulator) -> None:
    simulator.inject("status", Fault(answer={"uuid": "sora_x", "status": "queued", "extra": [1, 2]}))
    record = client.status("sora_x")
    assert record.status is None
    assert not record.ready
    assert not record.failed
