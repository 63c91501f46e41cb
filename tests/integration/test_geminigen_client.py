import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from sora_relay.adapters.geminigen import (
    HISTORY_PAGE_SIZE,
    GeminiGenClient,
    make_http_client,
    make_submit_client,
)
from sora_relay.domain.ports import ReferenceFile
from sora_relay.domain.provider import Accepted, MaybeTaken, ProviderUnavailable, Rejected, RetryLater
from sora_relay.domain.request import VideoRequest
from sora_relay_tools.simulator import Fault, GeminiGenSimulator, ManualClock

TIMEOUT = 5.0
WITHIN = 30.0  # the seconds a history read is given
REQUEST = VideoRequest.model_validate_json(
    '{"prompt": "a fox in the snow", "model": "sora-2-pro", "duration": 15, "resolution": "large",'
    ' "aspect_ratio": "landscape"}'
)


@pytest.fixture
def client(simulator: GeminiGenSimulator) -> GeminiGenClient:
    return GeminiGenClient(make_http_client(timeout=2), simulator.base_url, lambda: simulator.api_key)


def test_submission_is_multipart_with_the_provider_field_names(client, simulator) -> None:
    outcome = client.submit(REQUEST, [ReferenceFile("ref.png", "image/png", b"\x89PNG")], TIMEOUT)
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
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert outcome == Rejected(422, "prompt: injected HTTP 422")


def test_rate_limit_is_retryable_after_retry_after(client, simulator) -> None:
    simulator.inject("submit", Fault(status=429, retry_after="17"))
    assert client.submit(REQUEST, [], TIMEOUT) == RetryLater(
        "the provider answered HTTP 429: RATE_LIMITED: injected HTTP 429", 17.0
    )


@pytest.mark.parametrize("status", [409, 500, 502, 503, 504])
def test_server_error_may_have_been_taken(client, simulator, status: int) -> None:
    simulator.inject("submit", Fault(status=status))
    assert client.submit(REQUEST, [], TIMEOUT) == MaybeTaken(
        f"the provider answered HTTP {status}: SYSTEM_ERROR: injected HTTP {status}", server_error=status >= 500
    )


def test_gateway_error_after_the_provider_took_it_may_have_been_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(status=504, after_accepting=True))
    assert isinstance(client.submit(REQUEST, [], TIMEOUT), MaybeTaken)
    assert len(simulator.submissions()) == 1


def test_hang_up_after_the_provider_took_it_may_have_been_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(reset=True, after_accepting=True))
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, MaybeTaken)
    assert "answer was lost" in outcome.reason
    assert len(simulator.submissions()) == 1


def test_slow_answer_may_have_been_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(delay=0.5, status=503))
    outcome = client.submit(REQUEST, [], 0.2)
    assert outcome == MaybeTaken("the submission was sent but its answer was lost (no answer in time)")


def test_trickled_answer_ends_at_the_whole_call_deadline(client, simulator) -> None:
    simulator.inject("submit", Fault(trickle=0.05))
    started = time.monotonic()
    outcome = client.submit(REQUEST, [], 0.5)
    assert isinstance(outcome, MaybeTaken)
    assert time.monotonic() - started < 3


def test_wrong_key_waits_for_the_operator(simulator) -> None:
    wrong = GeminiGenClient(make_http_client(), simulator.base_url, lambda: "wrong")
    outcome = wrong.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, RetryLater)
    assert "API key" in outcome.reason
    assert "wrong" not in outcome.reason


def test_unreadable_success_may_have_been_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(malformed=True))
    assert client.submit(REQUEST, [], TIMEOUT) == MaybeTaken("the provider's answer (HTTP 200) could not be read")


def test_unreachable_provider_was_not_sent_anything() -> None:
    # Nothing listens on the discard port of loopback.
    gone = GeminiGenClient(
        make_http_client(connect_retries=0),
        "http://127.0.0.1:9",
        lambda: "key",
        submit_client=lambda: make_submit_client(connect_retries=0),
    )
    outcome = gone.submit(REQUEST, [], TIMEOUT)
    assert outcome == RetryLater("could not reach the provider (ConnectError)")


def test_status_of_a_running_generation(client, simulator) -> None:
    simulator.generation_seconds = 60
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, Accepted)
    record = client.status(outcome.record.uuid)
    assert record.status == 0  # queued, its first tenth
    assert not record.ready
    assert not record.failed


def test_status_of_a_finished_generation_has_its_address(client, simulator) -> None:
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, Accepted)
    record = client.status(outcome.record.uuid)
    assert record.ready
    assert record.video_url == f"{simulator.base_url}/media/{outcome.record.uuid}.mp4"


def test_status_2_before_the_address_is_not_ready(client, simulator) -> None:
    simulator.address_delay_checks = 1
    outcome = client.submit(REQUEST, [], TIMEOUT)
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


def test_connection_reset_before_taking_may_still_have_been_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(reset=True))
    assert isinstance(client.submit(REQUEST, [], TIMEOUT), MaybeTaken)
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


def test_history_lists_the_generations_since_a_moment(client, simulator) -> None:
    simulator.clock = clock = ManualClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    first = client.submit(REQUEST, [], TIMEOUT)
    clock.advance(timedelta(minutes=1))
    since = clock.now
    second = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert [g.uuid for g in client.recent_generations(since, WITHIN)] == [second.record.uuid]


def test_history_record_says_what_was_asked_for(client, simulator) -> None:
    client.submit(REQUEST, [], TIMEOUT)
    [generation] = client.recent_generations(datetime.now(UTC) - timedelta(minutes=1), WITHIN)
    assert generation.may_be(REQUEST)
    assert not generation.may_be(REQUEST.model_copy(update={"prompt": "a wolf"}))


def test_history_is_read_page_by_page_back_to_the_moment(client, simulator) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    for _ in range(HISTORY_PAGE_SIZE + 5):
        simulator._submit({"prompt": "a fox"}, [])
    assert len(client.recent_generations(since, WITHIN)) == HISTORY_PAGE_SIZE + 5
    # Pages capped below the size asked for: read on until every row since the moment is seen.
    pages = math.ceil((HISTORY_PAGE_SIZE + 5) / simulator.history_page_cap)
    assert simulator.requests.count(("GET", "/uapi/v1/histories")) == pages


def test_history_of_many_pages_since_the_moment_is_read_whole(client, simulator) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    rows = 60 * simulator.history_page_cap  # more pages than any fixed bound on pages would read
    for _ in range(rows):
        simulator._submit({"prompt": "a fox"}, [])
    assert len(client.recent_generations(since, WITHIN)) == rows


def test_history_that_cannot_be_read_in_its_time_is_unavailable(client, simulator) -> None:
    for _ in range(10 * simulator.history_page_cap):  # whole, 3 s or more
        simulator._submit({"prompt": "a fox"}, [])
    simulator.latency = 0.3
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="in time"):
        client.recent_generations(datetime.now(UTC) - timedelta(minutes=1), 0.5)
    assert time.monotonic() - started < 2


def test_history_whose_pages_repeat_is_unavailable_not_read_for_ever(client, simulator) -> None:
    simulator.clock = ManualClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    for _ in range(simulator.history_page_cap):
        simulator._submit({"prompt": "a fox"}, [])
        simulator.clock.advance(timedelta(seconds=1))
    simulator.history_total = "absent"
    _, first_page = simulator._history({"items_per_page": ["100"], "page": ["1"]})
    simulator.inject("history", Fault(answer=first_page), Fault(answer=first_page))  # a `page` ignored
    with pytest.raises(ProviderUnavailable, match="repeats"):
        client.recent_generations(datetime(2026, 11, 30, 11, 0, tzinfo=UTC), WITHIN)


def test_history_that_fails_is_unavailable(client, simulator) -> None:
    simulator.inject("history", Fault(status=502))
    with pytest.raises(ProviderUnavailable, match="HTTP 502"):
        client.recent_generations(datetime.now(UTC), WITHIN)


def test_history_that_cannot_be_read_is_unavailable(client, simulator) -> None:
    simulator.inject("history", Fault(answer={"success": True, "result": [{"id": 1}]}))
    with pytest.raises(ProviderUnavailable, match="could not be read"):
        client.recent_generations(datetime.now(UTC), WITHIN)


FAMILY_REQUESTS = {
    "veo": (
        '{"prompt": "a lighthouse", "model": "veo-3.1-fast", "family": "veo", "duration": 8,'
        ' "resolution": "720p", "aspect_ratio": "16:9"}'
    ),
    "kling": (
        '{"prompt": "a lighthouse at dawn", "model": "kling-video-2-6", "family": "kling", "duration": 5,'
        ' "mode": "standard", "aspect_ratio": "16:9"}'
    ),
    "seedance": (
        '{"prompt": "a lighthouse", "model": "seedance-2", "family": "seedance", "duration": 5,'
        ' "mode": "fast", "resolution": "720p", "aspect_ratio": "16:9"}'
    ),
    "grok": (
        '{"prompt": "a lighthouse", "model": "grok-3", "family": "grok", "duration": 6,'
        ' "resolution": "480p", "aspect_ratio": "landscape", "mode": "normal"}'
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILY_REQUESTS))
def test_each_family_goes_to_its_endpoint_with_the_providers_field_names(client, simulator, family) -> None:
    request = VideoRequest.model_validate_json(FAMILY_REQUESTS[family])
    outcome = client.submit(
        request,
        [ReferenceFile("ref.png", "image/png", b"\x89PNG", field="ref_images")] if family != "grok" else [],
        TIMEOUT,
    )
    assert isinstance(outcome, Accepted), outcome
    assert simulator.requests[-1] == ("POST", f"/uapi/v1/video-gen/{family}")
    [generation] = simulator.submissions()
    expected = request.model_dump(
        include={"prompt", "model", "duration", "resolution", "aspect_ratio", "mode"}, exclude_none=True
    )
    assert generation.fields == {name: str(value) for name, value in expected.items()}
    assert generation.file_names == ([] if family == "grok" else ["ref.png"])


def test_extension_goes_to_the_extend_endpoint_with_ref_history(client, simulator) -> None:
    first = client.submit(VideoRequest.model_validate_json(FAMILY_REQUESTS["kling"]), [], TIMEOUT)
    assert isinstance(first, Accepted)
    extension = VideoRequest.model_validate_json(
        '{"prompt": "the camera rises over the sea", "model": "kling-video-2-6", "family": "kling",'
        ' "duration": 10, "extend": {"request_id": "scene-1"}}'
    )
    outcome = client.submit(extension, [], TIMEOUT, extends=first.record.uuid)
    assert isinstance(outcome, Accepted), outcome
    assert simulator.requests[-1] == ("POST", "/uapi/v1/video-extend/kling")
    generation = simulator.generations[outcome.record.uuid]
    assert generation.fields == {
        "prompt": "the camera rises over the sea",
        "ref_history": first.record.uuid,
        "duration": "10",
    }
    assert (generation.model, generation.extends) == ("kling-video-2-6", first.record.uuid)


def test_a_flag_goes_as_the_providers_form_reads_one(client, simulator) -> None:
    request = VideoRequest.model_validate_json(
        '{"prompt": "a fox", "model": "grok-3", "family": "grok", "mode": "extremely-crazy", "skip_audio": true}'
    )
    outcome = client.submit(request, [], TIMEOUT)
    assert isinstance(outcome, Accepted)
    [generation] = simulator.submissions("a fox")
    assert (generation.fields["skip_audio"], generation.fields["mode"]) == ("true", "extremely-crazy")


def test_an_endpoint_of_one_model_is_sent_no_model_field(client, simulator) -> None:
    request = VideoRequest.model_validate_json('{"prompt": "a fox", "model": "grok-lower", "family": "grok-lower"}')
    assert isinstance(client.submit(request, [], TIMEOUT), Accepted)
    [generation] = simulator.submissions("a fox")
    assert "model" not in generation.fields
    assert ("POST", "/uapi/v1/video-gen/grok-lower") in simulator.requests
