"""The provider's answers as its 2025-2026 clients show them, through the simulator that answers
so: errors under `detail` and what each means, bare records, a history whose order and page
size are its own, negative statuses, addresses with a bogus host in front."""

import math
import uuid as uuids
from datetime import UTC, datetime, timedelta

import pytest

from sora_relay.adapters.geminigen import GeminiGenClient, make_http_client
from sora_relay.domain.provider import Accepted, Rejected, RetryLater
from sora_relay.domain.request import VideoRequest
from sora_relay_tools.simulator import Fault, GeminiGenSimulator, ManualClock

TIMEOUT = 5.0
WITHIN = 30.0  # the seconds a history read is given
REQUEST = VideoRequest.model_validate_json('{"prompt": "a fox; in the snow"}')
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(simulator: GeminiGenSimulator) -> GeminiGenClient:
    return GeminiGenClient(make_http_client(timeout=2), simulator.base_url, lambda: simulator.api_key)


def test_submit_answer_is_a_bare_record_with_a_version_1_uuid_queued(client) -> None:
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, Accepted)
    assert uuids.UUID(outcome.record.uuid).version == 1
    assert outcome.record.status == 0
    assert outcome.record.created_at.tzinfo is UTC


def test_plan_limit_on_running_generations_is_not_taken_and_never_final(client, simulator) -> None:
    simulator.generation_seconds, simulator.max_running = 60, 1
    client.submit(REQUEST, [], TIMEOUT)
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, RetryLater)
    assert "MAX_PROCESSING_VIDEO_EXCEEDED" in outcome.reason
    assert not outcome.account_refused
    assert len(simulator.submissions()) == 1


def test_credit_locked_by_running_generations_is_not_taken(client, simulator) -> None:
    simulator.inject("submit", Fault(status=400, code="NOT_ENOUGH_AND_LOCK_CREDIT"))
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, RetryLater)
    assert not outcome.account_refused


def test_account_out_of_credit_waits_for_an_operator(client, simulator) -> None:
    simulator.credits = 10
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, RetryLater)
    assert outcome.account_refused
    assert "NOT_ENOUGH_CREDIT" in outcome.reason
    assert simulator.submissions() == []


def test_refused_key_waits_for_an_operator_with_the_providers_code(simulator) -> None:
    client = GeminiGenClient(make_http_client(timeout=2), simulator.base_url, lambda: "wrong")
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(outcome, RetryLater)
    assert outcome.account_refused
    assert "API_KEY_NOT_FOUND" in outcome.reason


def test_invalid_input_is_rejected_in_the_providers_own_words(client, simulator) -> None:
    simulator.inject("submit", Fault(status=400))
    assert client.submit(REQUEST, [], TIMEOUT) == Rejected(400, "INVALID_INPUT: injected HTTP 400")


def test_validation_error_list_is_rejected_naming_the_field(client, simulator) -> None:
    simulator.inject("submit", Fault(status=422))
    outcome = client.submit(REQUEST, [], TIMEOUT)
    assert outcome == Rejected(422, "prompt: injected HTTP 422")


def test_history_rows_are_lean_and_their_prompt_cut_and_the_full_record_states_the_settings(client) -> None:
    accepted = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(accepted, Accepted)
    [row] = client.recent_generations(datetime.now(UTC) - timedelta(minutes=5), WITHIN)
    assert (row.input_text, row.duration, row.states_settings) == ("a fox", None, False)
    assert row.may_be(REQUEST)
    full = client.status(row.uuid)
    assert (full.duration, full.resolution, full.aspect_ratio) == (10, "small", "landscape")
    assert full.may_be(REQUEST)
    assert not full.may_be(REQUEST.model_copy(update={"duration": 15}))


@pytest.mark.parametrize("total", ["number", "string", "absent"])
@pytest.mark.parametrize("newest_first", [True, False], ids=["newest first", "oldest first"])
def test_history_finds_every_row_since_a_moment_whatever_its_order_and_total(
    client, simulator, newest_first, total
) -> None:
    simulator.clock = clock = ManualClock(START)
    simulator.history_newest_first = newest_first
    simulator.history_total = total
    for _ in range(95):  # older generations, a second apart
        simulator._submit({"prompt": "old"}, [])
        clock.advance(timedelta(seconds=1))
    clock.advance(timedelta(hours=1))
    since = clock.now - timedelta(minutes=5)
    recent = []
    for _ in range(25):
        recent.append(simulator._submit({"prompt": "recent"}, [])[1]["uuid"])
        clock.advance(timedelta(seconds=1))
    found = client.recent_generations(since, WITHIN)
    assert sorted(record.uuid for record in found) == sorted(recent)
    if newest_first or total != "absent":
        # The first page (which shows the order), then only the pages that hold the recent rows
        # and the one that reaches back past them (and, oldest first, the empty one after the
        # last): not all six.
        pages = 1 + math.ceil(25 / simulator.history_page_cap) + 1 + (not newest_first)
        assert simulator.requests.count(("GET", "/uapi/v1/histories")) <= pages <= 6


def test_oldest_first_history_without_a_total_finds_its_last_page_in_few_reads(client, simulator) -> None:
    simulator.clock = clock = ManualClock(START)
    simulator.history_newest_first, simulator.history_total = False, "absent"
    for _ in range(40 * simulator.history_page_cap - 3):  # 40 pages, the last not full
        simulator._submit({"prompt": "old"}, [])
        clock.advance(timedelta(seconds=1))
    clock.advance(timedelta(hours=1))
    since = clock.now
    newest = simulator._submit({"prompt": "recent"}, [])[1]["uuid"]
    assert [record.uuid for record in client.recent_generations(since, WITHIN)] == [newest]
    # Doubling to an empty page (2, 4 ... 64), halving back to page 40, and the page after it.
    assert simulator.requests.count(("GET", "/uapi/v1/histories")) <= 2 * math.ceil(math.log2(40)) + 3


def test_history_in_no_order_the_rows_show_is_read_whole(client, simulator) -> None:
    simulator.clock = ManualClock(START)
    for _ in range(45):
        simulator._submit({"prompt": "same moment"}, [])
    simulator.clock.advance(timedelta(hours=1))
    found = client.recent_generations(START + timedelta(minutes=5), WITHIN)
    assert found == []
    assert simulator.requests.count(("GET", "/uapi/v1/histories")) == math.ceil(45 / simulator.history_page_cap)


def test_policy_rejection_as_a_negative_status_is_a_failure_with_its_code(client, simulator) -> None:
    accepted = client.submit(REQUEST.model_copy(update={"prompt": "[reject] a fox"}), [], TIMEOUT)
    assert isinstance(accepted, Accepted)
    record = client.status(accepted.record.uuid)
    assert record.status == -2
    assert record.failed
    assert "PUBLIC_ERROR_POLICY_VIOLATION" in record.failure_message()


def test_address_behind_a_bogus_host_is_read_as_the_embedded_one(client, simulator) -> None:
    accepted = client.submit(REQUEST.model_copy(update={"prompt": "[bogus-host] a fox"}), [], TIMEOUT)
    assert isinstance(accepted, Accepted)
    record = client.status(accepted.record.uuid)
    assert record.video_url == f"{simulator.base_url}/media/{accepted.record.uuid}.mp4"


def test_media_type_stated_as_video_alone_is_not_a_media_type(client, simulator) -> None:
    accepted = client.submit(REQUEST, [], TIMEOUT)
    assert isinstance(accepted, Accepted)
    assert client.status(accepted.record.uuid).media_type == "video"
