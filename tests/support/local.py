"""Driving the functions by hand until a job's events are out."""

import json
import time
from typing import Any

from .aws import lambda_context
from .paths import ROOT

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
