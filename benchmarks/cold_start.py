"""Benchmark 5: how long each handler module takes to import, as Lambda's init does it.

    .venv/bin/python benchmarks/cold_start.py [--runs 9]

Each measurement is a fresh interpreter that sees what Lambda's does: the standard library
(no site-packages: `-S`), the layer's locked packages (installed once into a folder of their
own, for this machine), the runtime package and the function's CodeUri folder. It loads the
handler named in the template; the baseline is the same interpreter importing only boto3.

Three parts wait for a handler's first invocation, which pays for them there, and the last rows
say how much: Powertools' Tracer (and the X-Ray SDK), as tracing is on in the deployed stack;
httpx, in every function that calls the provider or a webhook (the API calls neither); and the
batch utility, in every function a queue triggers (it imports asyncio and every event source's
data classes).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess  # nosec B404  # runs our own interpreter on our own code
import sys
from dataclasses import dataclass
from pathlib import Path

from common import TEMPLATE, print_table

ROOT = TEMPLATE.parent
LOCK = ROOT / "layers" / "shared" / "requirements.txt"
# Processor time, not the clock's: an import on a warm file cache is bound by the processor,
# and a Lambda environment runs nothing else, while on a shared machine another process's
# turn would count as the import's.
MEASURE = """
import sys, time
sys.path[:0] = {paths!r}
{setup}
started = time.process_time()
{body}
print(time.process_time() - started)
"""
# As `sora_relay_tools.local.functions.load_handler` loads it, written out: that helper's own
# imports would be measured with the handler's (or, made beforehand, take some of the handler's).
LOAD_HANDLER = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.{attribute}
"""
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps"]
FUNCTIONS = {
    "SubmitFunction": "functions/submit",
    "PollFunction": "functions/poll",
    "SweepFunction": "functions/sweep",
    "ArchiveFunction": "functions/archive",
    "ApiFunction": "functions/api",
    "WebhookFunction": "functions/webhook",
}


def layer_packages() -> Path:
    """The lock installed for this machine's Python, once per version of the lock."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    folder = ROOT / ".venv" / f"cold-start-layer-{digest}"
    if not folder.exists():
        subprocess.run(  # noqa: S603  # nosec B603  # pip, on the lock, by its hashes
            [*PIP_INSTALL, "--requirement", str(LOCK), "--target", str(folder)],
            check=True,
        )
    return folder


@dataclass(frozen=True)
class Measured:
    label: str
    body: str
    paths: list[str]
    setup: str = ""
    tracing: bool = False


def once(measured: Measured) -> float:
    environment = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    if not measured.tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    program = MEASURE.format(paths=measured.paths, setup=measured.setup, body=measured.body)
    answer = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments
        [sys.executable, "-S", "-c", program], capture_output=True, text=True, check=True, env=environment
    )
    return float(answer.stdout.strip().splitlines()[-1]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    packages = [str(layer_packages()), str(ROOT / "layers" / "shared")]
    loads = {
        name: LOAD_HANDLER.format(path=str(ROOT / folder / "app.py"), attribute="handler")
        for name, folder in FUNCTIONS.items()
    }
    rows = [Measured("import boto3 (baseline)", "import boto3", packages)]
    rows += [
        Measured(f"{name} (functions/{Path(folder).name}/app.py)", loads[name], [str(ROOT / folder), *packages])
        for name, folder in FUNCTIONS.items()
    ]
    # What a first invocation loads once the handler is loaded: (label, what it runs, whose handler, traced).
    first_invocation = [
        (
            "the Tracer, made by a first traced invocation",
            "from aws_lambda_powertools import Tracer; Tracer(service='sora-relay')",
            "SubmitFunction",
            True,
        ),
        (
            "httpx and the provider's client, made by a first call",
            "import sora_relay.adapters.geminigen",
            "PollFunction",
            False,
        ),
        (
            "the batch utility, loaded by a first batch",
            "import aws_lambda_powertools.utilities.batch",
            "SweepFunction",
            False,
        ),
    ]
    rows += [
        Measured(label, body, [str(ROOT / FUNCTIONS[name]), *packages], setup=loads[name], tracing=traced)
        for label, body, name, traced in first_invocation
    ]
    # Each round measures every row once, and a row's ratio is the median of its rounds' ratios
    # to the same round's baseline: a machine slowing down or speeding up for a while moves both
    # sides of a ratio together (taken apart, the two medians moved a ratio by up to 0.3 between runs).
    times: dict[str, list[float]] = {row.label: [] for row in rows}
    for _ in range(args.runs):
        for row in rows:
            times[row.label].append(once(row))
    baseline = times[rows[0].label]
    print_table(
        f"5. cold start: handler import (processor time), {args.runs} fresh interpreters each, measured in turn",
        ("module", "median ms", "fastest ms", "x boto3 (median of rounds)"),
        [
            (
                label,
                statistics.median(values),
                min(values),
                statistics.median(value / base for value, base in zip(values, baseline, strict=True)),
            )
            for label, values in times.items()
        ],
    )


if __name__ == "__main__":
    main()
