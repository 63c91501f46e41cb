"""Benchmark 2: one scheduled poll over 1,000 due jobs among 20,000 finished ones.

    .venv/bin/python benchmarks/poll_sweep.py [--due 1000] [--finished 20000] [--latency 0.1] [--runs 3]

The poll handler, moto's server in a process of its own, the simulator answering each status call after the set
latency. Figures: wall time against the ideal ceil(due / concurrency) x latency, and the
items the sweep read from DynamoDB (the Query answers' ScannedCount) against the table.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from common import local_stack, print_table, timed

from sora_relay import wiring
from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.domain.events import ProviderSummary
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.request import VideoRequest
from sora_relay_tools.local.stack import Provider
from sora_relay_tools.simulator import GeminiGenSimulator

CONCURRENCY = 16


def fill(stack: Any, simulator: GeminiGenSimulator, due: int, finished: int, prefix: str = "j") -> None:
    client = boto3.client("dynamodb")
    table = stack.outputs["JobsTableName"]
    store = DynamoJobStore(client, table, shards=4, finished_ttl=timedelta(days=1))
    now = datetime.now(UTC)
    request = VideoRequest.model_validate_json('{"prompt": "a fox"}')
    items = []
    for number in range(due + finished):
        job = Job(
            request_id=f"{prefix}{number}",
            state=JobState.SUBMITTED,
            fingerprint="f",
            created_at=now,
            updated_at=now,
            request=request,
        )
        if number < due:
            uuid = simulator._submit({"prompt": f"a fox {number}"}, [])[1]["uuid"]
            job = replace(
                job, provider=ProviderSummary(uuid=uuid), submitted_at=now, next_check_at=now - timedelta(seconds=1)
            )
        else:
            job = replace(job, state=JobState.ARCHIVED, event_published=True)
        items.append(store.to_item(job))
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        while batch:
            batch = client.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems", {}).get(table, [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--finished", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3, help="Sweeps measured; the median is reported.")
    args = parser.parse_args()
    reads: Counter[str] = Counter()

    def count(operation: str, answer: dict[str, Any]) -> None:
        if operation == "dynamodb.Query":
            reads["queries"] += 1
            reads["items"] += answer.get("ScannedCount", answer.get("Count", 0))

    schedule = {"id": "bench", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-23T00:00:00Z"}
    runs: list[Run] = []
    with (
        GeminiGenSimulator(generation_seconds=3600) as simulator,
        local_stack(Provider(simulator.base_url, simulator.api_key), server_process=True) as stack,
    ):
        moto = stack.moto_process
        assert moto is not None
        wiring.reset(on_aws_answer=count)
        # A warm container, as the poller's every minute keeps it: imports, clients and the
        # API key (cached for minutes) come with a first invocation that checks one job.
        fill(stack, simulator, due=1, finished=0, prefix="warm-up-")
        stack.driver.invoke("PollFunction", schedule)
        setup = timed(lambda: fill(stack, simulator, 0, args.finished, prefix="f"))
        for _ in range(args.runs):
            fill(stack, simulator, args.due, 0)  # the same due jobs, due again
            simulator.latency = args.latency
            reads.clear()
            before = len(simulator.requests)
            cpu, moto_cpu = time.process_time(), moto.cpu_seconds()
            wall = timed(lambda: stack.driver.invoke("PollFunction", schedule))
            calls = sum(1 for _, path in simulator.requests[before:] if path.startswith("/uapi/v1/history/"))
            runs.append(
                Run(
                    wall,
                    calls,
                    reads["items"],
                    reads["queries"],
                    time.process_time() - cpu,
                    moto.cpu_seconds() - moto_cpu,
                )
            )
        wiring.reset()
    ideal = math.ceil(args.due / CONCURRENCY) * args.latency
    run = sorted(runs, key=lambda run: run.wall)[len(runs) // 2]
    print_table(
        f"2. poll sweep: {args.due:,} due among {args.due + args.finished:,} jobs, {args.latency * 1000:.0f} ms "
        f"per status call, {CONCURRENCY} at once; the median of {args.runs} sweeps (setup {setup:.0f} s, not timed)",
        ("figure", "value"),
        [
            ("status calls", run.status_calls),
            ("wall time (s)", run.wall),
            ("each sweep's wall time (s)", " ".join(f"{r.wall:.2f}" for r in runs)),
            ("ideal ceil(due / concurrency) x latency (s)", ideal),
            ("wall / ideal", run.wall / ideal),
            ("items read from DynamoDB (Query ScannedCount)", run.items_read),
            ("queries", run.queries),
            ("items in the table", args.due + args.finished),
            ("processor time: the poller and the simulator (s)", run.cpu),
            ("processor time: moto (s)", run.moto_cpu),
        ],
    )


@dataclass(frozen=True)
class Run:
    wall: float
    status_calls: int
    items_read: int
    queries: int
    cpu: float
    moto_cpu: float


if __name__ == "__main__":
    main()
