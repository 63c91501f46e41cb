"""Benchmark 5: how long each handler module takes to import, as Lambda's init does it.

    .venv/bin/python benchmarks/cold_start.py [--runs 5]

Each measurement is a fresh interpreter that loads the handler named in the template from
its CodeUri folder; the baseline is the same interpreter importing only boto3.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess  # nosec B404  # runs our own interpreter on our own code
import sys
from pathlib import Path

from common import TEMPLATE, print_table

ROOT = TEMPLATE.parent
MEASURE = """
import time, sys
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""
LOAD_HANDLER = """
from pathlib import Path
from sora_relay_tools.local.functions import load_handler
load_handler(Path({code_dir!r}), {handler!r})
"""
FUNCTIONS = {
    "SubmitFunction": "functions/submit",
    "PollFunction": "functions/poll",
    "ArchiveFunction": "functions/archive",
}


def measure(body: str, runs: int) -> float:
    environment = {"POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    times = []
    for _ in range(runs):
        answer = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments
            [sys.executable, "-c", MEASURE.format(body=body)],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
        times.append(float(answer.stdout.strip().splitlines()[-1]))
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    baseline = measure("import boto3", args.runs)
    rows = [("import boto3 (baseline)", baseline, 1.0)]
    for name, folder in FUNCTIONS.items():
        body = LOAD_HANDLER.format(code_dir=str(ROOT / folder), handler="app.handler")
        milliseconds = measure(body, args.runs)
        rows.append((f"{name} (functions/{Path(folder).name}/app.py)", milliseconds, milliseconds / baseline))
    print_table(
        f"5. cold start: handler import, median of {args.runs} fresh interpreters", ("module", "ms", "x boto3"), rows
    )


if __name__ == "__main__":
    main()
