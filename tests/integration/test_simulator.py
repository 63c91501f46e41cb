"""The simulator answers as the real API does (docs/provider.md): the shapes the relay's other
tests meet, checked at the wire."""

import uuid as uuids
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from sora_relay_tools.simulator import GeminiGenSimulator, ManualClock
from sora_relay_tools.simulator.server import _Server

START = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC)


@pytest.fixture
def sim() -> GeminiGenSimulator:
    with GeminiGenSimulator(clock=ManualClock(START), generation_seconds=60) as simulator:
        yield simulator


def submit(sim: GeminiGenSimulator, prompt: str = "a fox; in the snow", key: str | None = None, **fields: str):
    parts = [("prompt", (None, prompt)), *((name, (None, value)) for name, value in fields.items())]
    return httpx.post(f"{sim.base_url}/uapi/v1/video-gen/sora", files=parts, headers={"x-api-key": key or sim.api_key})


def get(sim: GeminiGenSimulator, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{sim.base_url}{path}", params=params, headers={"x-api-key": sim.api_key})


def test_submit_answers_a_bare_queued_record_whose_uuid_is_version_1_of_its_time(sim) -> None:
    record = submit(sim).json()
    assert "data" not in record
    assert (record["status"], record["status_desc"], record["media_type"]) == (0, "queued", "video")
    assert record["created_at"] == "2026-11-30T12:00:07"  # UTC, without a zone
    made = uuids.UUID(record["uuid"])
    assert made.version == 1
    assert datetime(1582, 10, 15, tzinfo=UTC) + timedelta(microseconds=made.time // 10) - START < timedelta(seconds=1)


def test_history_rows_are_lean_with_the_prompt_cut_and_pages_capped(sim) -> None:
    for _ in range(25):
        submit(sim, "x" * 300)
    page = get(sim, "/uapi/v1/histories", filter_by="all", items_per_page=100, page=1).json()
    assert page["total"] == 25
    assert len(page["result"]) == sim.history_page_cap
    row = page["result"][0]
    assert len(row["input_text"]) == 120
    assert not {"duration", "resolution", "aspect_ratio", "generated_video", "media_type"} & set(row)


def test_history_cuts_the_prompt_at_its_first_semicolon(sim) -> None:
    submit(sim)
    [row] = get(sim, "/uapi/v1/histories", items_per_page=10, page=1).json()["result"]
    assert row["input_text"] == "a fox"


def test_errors_are_written_under_detail_with_the_providers_codes(sim) -> None:
    assert submit(sim, key="wrong").json() == {
        "detail": {"error_code": "API_KEY_NOT_FOUND", "error_message": "The API key is missing or not valid."}
    }
    refused = submit(sim, duration="7")
    assert (refused.status_code, refused.json()["detail"]["error_code"]) == (400, "INVALID_INPUT")
    missing = httpx.post(
        f"{sim.base_url}/uapi/v1/video-gen/sora",
        files=[("model", (None, "sora-2"))],
        headers={"x-api-key": sim.api_key},
    )
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "prompt"]


def test_plan_limit_and_credit_refuse_with_their_codes(sim) -> None:
    sim.max_running = 1
    submit(sim)
    busy = submit(sim)
    assert (busy.status_code, busy.json()["detail"]["error_code"]) == (400, "MAX_PROCESSING_VIDEO_EXCEEDED")
    sim.max_running, sim.credits = None, 10
    poor = submit(sim)
    assert (poor.status_code, poor.json()["detail"]["error_code"]) == (402, "NOT_ENOUGH_CREDIT")


def test_finished_video_is_served_as_octet_stream_and_its_settings_are_on_the_video(sim) -> None:
    record = submit(sim).json()
    sim.clock.advance(timedelta(minutes=2))
    full = get(sim, f"/uapi/v1/history/{record['uuid']}").json()
    [video] = full["generated_video"]
    assert (video["duration"], video["resolution"], video["aspect_ratio"]) == (10, "small", "landscape")
    media = httpx.get(video["video_url"])
    assert media.headers["content-type"] == "application/octet-stream"
    assert media.content[4:8] == b"ftyp"


def test_policy_rejection_is_a_negative_status_at_once(sim) -> None:
    record = submit(sim, "[reject] a riot").json()
    full = get(sim, f"/uapi/v1/history/{record['uuid']}").json()
    assert (full["status"], full["error_code"]) == (-2, "PUBLIC_ERROR_POLICY_VIOLATION")


def test_malformed_address_has_a_bogus_host_in_front_of_the_real_one(sim) -> None:
    record = submit(sim, "[bogus-host] a harbour").json()
    sim.clock.advance(timedelta(minutes=2))
    url = get(sim, f"/uapi/v1/history/{record['uuid']}").json()["generated_video"][0]["video_url"]
    assert url.startswith("https://s3.")
    assert url.endswith(f"/{sim.base_url}/media/{record['uuid']}.mp4")


def test_held_generation_runs_until_released(sim) -> None:
    record = submit(sim, "a fox").json()
    sim.hold("a fox")
    sim.clock.advance(timedelta(minutes=5))
    assert get(sim, f"/uapi/v1/history/{record['uuid']}").json()["status"] == 1
    sim.release("a fox")
    assert get(sim, f"/uapi/v1/history/{record['uuid']}").json()["status"] == 2


def test_a_client_hanging_up_leaves_no_traceback_but_a_fault_of_the_simulators_does(capsys) -> None:
    server = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset"), ValueError("a bug")):
            try:
                raise error
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    written = capsys.readouterr().err
    assert (written.count("Traceback"), "ValueError: a bug" in written) == (1, True)
