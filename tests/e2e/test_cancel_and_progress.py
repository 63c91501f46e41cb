"""On the local stack, through the `sora-relay` command: a request held by the daily budget is
canceled and never reaches the provider; a submitted one cannot be, and the command says what
it cost; the submitted job's events come in order, progress included, and its real cost
arrives with its video."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import GeminiGenSimulator

from ..support.cli import cli
from ..support.paths import TEMPLATE

PRICE = 30  # the simulator's quote for a sora-2 request


@pytest.fixture(scope="module")
def budgeted() -> Iterator[tuple[LocalStack, GeminiGenSimulator]]:
    with GeminiGenSimulator(generation_seconds=4) as simulator:
        provider = Provider(simulator.base_url, simulator.api_key)
        parameters = {"PollIntervalSeconds": "1", "DailyCreditBudget": str(PRICE), "ProgressEvents": "true"}
        with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters=parameters) as stack:
            yield stack, simulator


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_held_request_is_canceled_and_the_submitted_one_runs_to_its_end(budgeted) -> None:
    stack, simulator = budgeted
    events: list[dict[str, Any]] = []

    def final(request_id: str) -> dict[str, Any] | None:
        events.extend(stack.drain_events())
        found = [
            e for e in events if e["request_id"] == request_id and e["event"] in {"video.completed", "video.failed"}
        ]
        return found[0] if found else None

    # Held by the simulator until both cancels are done: however slowly the commands start, the
    # paid job is still running when `cancel` reaches it.
    simulator.hold("a fox")
    assert cli("submit", "a fox", "--request-id", "paid").returncode == 0
    wait_for(lambda: (stack.job("paid") or {}).get("state") == "submitted")
    assert cli("submit", "a wolf", "--request-id", "held").returncode == 0
    wait_for(lambda: (stack.job("held") or {}).get("held") is not None)

    canceled = cli("cancel", "held", "--json")
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["event"]["error"]["code"] == "canceled"
    refused = cli("cancel", "paid")
    assert refused.returncode == 6
    assert "was submitted to the provider" in refused.stderr
    assert f"{PRICE} credits" in refused.stderr
    simulator.release("a fox")

    # The same request sent again (as a redrive would) is a repeat of a finished job.
    stack.send({"request_id": "held", "prompt": "a wolf"})
    wait_for(lambda: final("paid") is not None and final("held") is not None)
    time.sleep(1)
    assert simulator.submissions(prompt="a wolf") == []
    assert final("held")["error"]["code"] == "canceled"
    assert [e["event"] for e in events if e["request_id"] == "held"] == ["video.failed"]

    paid = [e for e in events if e["request_id"] == "paid"]
    kinds = [e["event"] for e in paid]
    assert kinds[0] == "video.submitted"
    assert kinds[-1] == "video.completed"
    assert set(kinds[1:-1]) == {"video.progress"}
    progress = [e["progress"] for e in paid if e["event"] == "video.progress"]
    assert progress
    assert progress == sorted(progress)
    assert paid[-1]["provider"]["used_credit"] == PRICE
