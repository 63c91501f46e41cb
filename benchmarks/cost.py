"""Benchmark 7: what a batch of videos costs on AWS, priced at the on-demand list prices.

    .venv/bin/python benchmarks/cost.py [--jobs 20] [--video-mib 32] [--latency 0.3]

The batch runs through the local stack on a virtual clock (see sora_relay_tools/local/virtual.py), every
provider call taking `--latency` seconds and every video `--video-mib` MiB. Counted from what
the functions did: each invocation's billed time (the real time it worked, plus the virtual
time it waited within its invocation) at its function's memory size; DynamoDB read and
write units from each call's items; SQS requests (the functions', the user's send, and the
triggers' receive and delete of each batch); SNS publishes; S3 requests by class; Secrets
Manager calls; X-Ray traces (one an invocation); the bytes logged. Excluded: the provider's
credits, S3 storage, and what does not grow with the number of videos (listed apart).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from common import TEMPLATE, print_table

from sora_relay_tools.local.virtual import BatchRun, plan_jobs, virtual_stack

# AWS on-demand list prices, us-east-1, as published on each service's pricing page (read
# 2025-10; the DynamoDB figures are those after its 2024-11-01 on-demand price cut). No free tier.
PRICES_AS_OF = "2025-10"
LAMBDA_GB_SECOND_ARM = 0.0000133334  # Architectures: [arm64]
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
SQS_REQUEST = 0.40 / 1e6  # standard queue; each 64 KiB of a payload is a request
SNS_PUBLISH = 0.50 / 1e6  # standard topic; delivery to SQS is free
S3_PUT_CLASS = 0.005 / 1e3  # PUT, COPY, POST, LIST (multipart parts included)
S3_GET_CLASS = 0.0004 / 1e3  # GET, HEAD
SECRETS_MANAGER_CALL = 0.05 / 1e4
XRAY_TRACE = 5.00 / 1e6
LOG_INGESTION_GB = 0.50
# What does not grow with the number of videos, per month.
FIXED_MONTHLY = {
    "Secrets Manager: the API key": 0.40,
    "CloudWatch: alarms (standard resolution), about 20 at $0.10": 2.00,
    "CloudWatch: the dashboard (beyond the first three free)": 3.00,
    "CloudWatch: custom metrics, about 40 names at $0.30": 12.00,
}

_S3_PUT = {
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "ListObjectsV2",
}
_S3_GET = {"GetObject", "HeadObject"}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: names plus values (typed, as the low-level API sends them)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    kind, content = next(iter(value.items()))
    if kind in {"S", "B"}:
        return len(content.encode() if isinstance(content, str) else content)
    if kind == "N":
        return math.ceil(len(content.lstrip("-").replace(".", "")) / 2) + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + item_bytes(content)
    if kind == "L":
        return 3 + sum(_value_bytes(v) for v in content)
    return len(str(content))


def dynamodb_units(run: BatchRun) -> tuple[float, float]:
    """Write and read units of the batch's calls (index writes included: the outstanding index
    holds whole jobs; a job write that moves its due time deletes and puts its index entry)."""
    writes = 0.0
    for name, params in run.usage.calls:
        service, _, operation = name.partition(".")
        if service != "dynamodb" or operation not in _DYNAMODB_WRITES:
            continue
        units = math.ceil(item_bytes(params.get("Item", params.get("Key", {}))) / 1024) or 1
        writes += units
        item = params.get("Item", {})
        if "state" in item:  # a job: its index entry is deleted, put, or both
            writes += 2 * units if "next_check_at" in item else 1
    reads = 0.0
    for name, answer in run.usage.answers:
        if name == "dynamodb.GetItem":
            reads += math.ceil(item_bytes(answer.get("Item", {})) / 4096) or 1  # strongly consistent
        elif name == "dynamodb.Query":
            size = sum(item_bytes(item) for item in answer.get("Items", []))
            reads += (math.ceil(size / 4096) or 1) / 2  # the index: eventually consistent
    return writes, reads


def lambda_cost(run: BatchRun, memory: dict[str, int]) -> list[tuple[str, float, str]]:
    rows = []
    for function in sorted({name for name, _ in run.usage.invocations}):
        seconds = [billed for name, billed in run.usage.invocations if name == function]
        gb_seconds = sum(seconds) * memory[function] / 1024
        cost = gb_seconds * LAMBDA_GB_SECOND_ARM + len(seconds) * LAMBDA_REQUEST
        rows.append(
            (
                f"Lambda {function}",
                cost,
                f"{len(seconds)} invocations, {sum(seconds):.1f} s billed at {memory[function]} MB",
            )
        )
    return rows


def count(calls: Iterable[tuple[str, dict[str, Any]]], service: str, operations: set[str] | None = None) -> int:
    return sum(
        1
        for name, _ in calls
        if name.startswith(f"{service}.") and (operations is None or name.partition(".")[2] in operations)
    )


def costs(run: BatchRun, memory: dict[str, int]) -> list[tuple[str, float, str]]:
    calls = run.usage.calls
    writes, reads = dynamodb_units(run)
    sqs = count(calls, "sqs") + 2 * sum(run.usage.trigger_batches.values())
    s3_put, s3_get = count(calls, "s3", _S3_PUT), count(calls, "s3", _S3_GET)
    secrets = count(calls, "secretsmanager")
    traces = len(run.usage.invocations)
    log_gb = run.usage.log_bytes / 1024**3
    return [
        *lambda_cost(run, memory),
        (
            "DynamoDB",
            writes * DYNAMODB_WRITE_UNIT + reads * DYNAMODB_READ_UNIT,
            f"{writes:.0f} write units, {reads:.0f} read units",
        ),
        ("SQS", sqs * SQS_REQUEST, f"{sqs} requests"),
        ("SNS", count(calls, "sns", {"Publish"}) * SNS_PUBLISH, f"{count(calls, 'sns', {'Publish'})} publishes"),
        ("S3 requests", s3_put * S3_PUT_CLASS + s3_get * S3_GET_CLASS, f"{s3_put} PUT-class, {s3_get} GET-class"),
        ("Secrets Manager", secrets * SECRETS_MANAGER_CALL, f"{secrets} calls"),
        ("X-Ray", traces * XRAY_TRACE, f"{traces} traces"),
        ("CloudWatch Logs", log_gb * LOG_INGESTION_GB, f"{run.usage.log_bytes / 1024:.0f} KiB logged"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--video-mib", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.3, help="Seconds each provider call takes.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with virtual_stack(
        TEMPLATE,
        latency=args.latency,
        video_size=args.video_mib * 1024 * 1024,
        # An account that runs the whole batch at once: a job's own cost, not a line's (benchmark 8).
        environment={"MAX_ACTIVE_GENERATIONS": str(args.jobs)},
    ) as stack:
        stack.run(plan_jobs(2, args.seed, "warm-up"))  # containers, clients and the key, as a busy stack has them
        run = stack.run(plan_jobs(args.jobs, args.seed, "batch"))
        memory = {name: function.memory for name, function in stack.stack.deployed.functions.items()}  # type: ignore[union-attr]
    assert all(job.announced_at is not None for job in run.jobs), "some jobs did not end"
    rows = costs(run, memory)
    total = sum(cost for _, cost, _ in rows)
    per_thousand = total / args.jobs * 1000
    by_service = Counter({name: cost for name, cost, _ in rows})
    print_table(
        f"7. what it costs on AWS: {args.jobs} videos of {args.video_mib} MiB, {args.latency * 1000:.0f} ms per "
        f"provider call, {run.virtual_seconds / 60:.0f} virtual minutes; us-east-1 on-demand list prices "
        f"({PRICES_AS_OF}); USD",
        ("service", "for the batch", "per 1,000 videos", "share", "what was counted"),
        [
            (name, f"{cost:.6f}", f"{cost / args.jobs * 1000:.4f}", f"{cost / total:.0%}", detail)
            for name, cost, detail in sorted(rows, key=lambda row: -row[1])
        ],
    )
    print_table(
        "   not per video (per month, whatever the volume)",
        ("item", "USD per month"),
        [(name, f"{cost:.2f}") for name, cost in FIXED_MONTHLY.items()],
    )
    dominant = by_service.most_common(1)[0][0]
    print(f"\n   1,000 videos: ${per_thousand:.4f} (goal: under $0.10); the largest part: {dominant}")


if __name__ == "__main__":
    main()
