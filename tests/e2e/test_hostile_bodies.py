"""On the local stack: each hostile body ends in one small invalid_request event, spends
nothing and holds nothing up; valid requests sent right behind them complete within a daily
budget that fits only them."""

import io
import json
from collections.abc import Iterator

import pytest
from rich.console import Console

from sora_relay.domain.events import MAX_EVENT_BYTES
from sora_relay_tools.local.run import PlannedRequest, run
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import GeminiGenSimulator

from ..support.paths import TEMPLATE

PRICE = 30  # the simulator's quote for a sora-2 request
HOSTILE = {
    "ipv6-unclosed": {"prompt": "a fox", "files": ["https://[::1/x.png"]},
    "port-not-a-number": {"prompt": "a fox", "files": ["https://example.com:abc/x.png"]},
    "idna-error": {"prompt": "a fox", "files": ["https://xn--a.com/x.png"]},
    "host-not-allowed": {"prompt": "a fox", "files": ["https://images.example/x.png"]},
    "bucket-not-allowed": {"prompt": "a fox", "files": ["s3://someone-elses-bucket/x.png"]},
    "unknown-fields": {"prompt": "a fox", **{f"field_{n:05}": n for n in range(12_000)}},  # about 240 KiB
    "metadata-not-strings": {"prompt": "a fox", "metadata": {f"k{n}": n for n in range(6_000)}},
}
NESTED = "[" * 30_000 + "]" * 30_000


@pytest.fixture(scope="module")
def budgeted_stack() -> Iterator[tuple[LocalStack, GeminiGenSimulator]]:
    with GeminiGenSimulator() as simulator:
        provider = Provider(simulator.base_url, simulator.api_key)
        parameters = {
            "PollIntervalSeconds": "1",
            "DailyCreditBudget": str(3 * PRICE),
            "AllowedReferenceHosts": "*.example.com",
        }
        with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters=parameters) as stack:
            yield stack, simulator


def test_hostile_bodies_end_small_and_spend_nothing_and_valid_ones_behind_them_complete(budgeted_stack, tmp_path):
    stack, simulator = budgeted_stack
    planned = [
        *(
            PlannedRequest(name, json.dumps({"request_id": name, **body}), "video.failed")
            for name, body in HOSTILE.items()
        ),
        PlannedRequest("nested", NESTED, "video.failed"),
        *(
            PlannedRequest(
                f"valid-{n}", json.dumps({"request_id": f"valid-{n}", "prompt": f"a fox, take {n}"}), "video.completed"
            )
            for n in range(3)
        ),
    ]
    assert len(json.dumps(HOSTILE["unknown-fields"])) > 200 * 1024
    tracked = run(stack, planned, out_dir=tmp_path, timeout=60, console=Console(file=io.StringIO()))
    assert [job.problems for job in tracked] == [[]] * len(planned)
    for job in tracked[: len(planned) - 3]:
        assert job.event is not None
        assert job.event["error"]["code"] == "invalid_request", job.planned.label
        assert len(json.dumps(job.event).encode()) < MAX_EVENT_BYTES
    assert len(simulator.submissions()) == 3
    dead_letters = stack.client("sqs").receive_message(
        QueueUrl=stack.outputs["RequestDeadLetterQueueUrl"], MaxNumberOfMessages=10
    )
    assert dead_letters.get("Messages", []) == []
