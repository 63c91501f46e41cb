"""Shared by the end-to-end tests of one module: a provider double and a local stack that outlive each test."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sora_relay.local.stack import LocalStack, Provider
from sora_relay.simulator import GeminiGenSimulator

from ..conftest import ROOT, TEMPLATE, lambda_context, load_function

SCHEDULE = json.loads((ROOT / "events" / "schedule.json").read_text())


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[GeminiGenSimulator]:
    with GeminiGenSimulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def local_stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    """The template deployed into moto's server, driven as Lambda would, for one module."""
    provider = Provider(module_simulator.base_url, module_simulator.api_key)
    with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters={"PollIntervalSeconds": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    return {name: load_function(f"{name.capitalize()}Function") for name in ("submit", "poll", "archive")}


def run_until_events(stack: Any, functions: dict[str, Any], count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Drive the functions as their triggers would until `count` events are out."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        for queue_url, function in ((stack.request_queue_url, "submit"), (stack.archive_queue_url, "archive")):
            batch = stack.receive(queue_url, visibility_timeout=30)
            if batch["Records"]:
                answer = functions[function](batch, lambda_context())
                failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
                stack.delete(queue_url, batch, failed)
        functions["poll"](SCHEDULE, lambda_context())
        events += stack.events()
        time.sleep(0.2)
    return events
