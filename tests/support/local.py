"""Driving the functions by hand until a job's events are out."""

import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from sora_relay_tools.local.run import PlannedRequest, Tracked, run
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import GeminiGenSimulator

from .aws import lambda_context
from .paths import ROOT, TEMPLATE

SCHEDULE = json.loads((ROOT / "events" / "schedule.json").read_text())


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


@contextlib.contextmanager
def local_stack(simulator: GeminiGenSimulator, **parameters: str) -> Iterator[LocalStack]:
    """The template on the local stack against `simulator`, polled each second, with `parameters`."""
    provider = Provider(simulator.base_url, simulator.api_key)
    with LocalStack(
        TEMPLATE, provider, schedule_interval=0.3, parameters={"PollIntervalSeconds": "1", **parameters}
    ) as stack:
        yield stack


def send(stack: LocalStack, tmp_path: Path, *bodies: dict[str, Any], expect: str = "video.completed") -> list[Tracked]:
    """Each body sent, followed to its final event (expected to be `expect`), its video fetched."""
    planned = [PlannedRequest(body["request_id"], json.dumps(body), expect) for body in bodies]
    return run(stack, planned, out_dir=tmp_path, timeout=90, console=Console(file=io.StringIO()))
