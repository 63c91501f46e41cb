"""Benchmark 5: how long each handler module takes to import, as Lambda's init does it.

    .venv/bin/python benchmarks/cold_start.py [--runs 9]

Each measurement is a fresh interpreter that sees what Lambda's does: the standard library
(no site-packages: `-S`), the layer's locked packages (installed once into a folder of their
own, for this machine), the runtime package and the function's CodeUri folder. It imports
boto3, timed on its own, then loads the handler named in the template: the handler's import is
the sum, and its ratio is to the boto3 of its own interpreter. The baseline row is an
interpreter that imports boto3 only.

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
# turn would count as the import's. `first` is timed on its own, then `body`.
MEASURE = """
import sys, time
sys.path[:0] = {paths!r}
{setup}
started = time.process_time()
{first}
first = time.process_time()
{body}
print(first - started, time.process_time() - first)
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
    setup: str = ""  # run before the clock starts
    first: str = ""  # timed apart from the body, in the same interpreter
    tracing: bool = False


def once(measured: Measured) -> tuple[float, float]:
    """Milliseconds of `first`, then of `body`."""
    environment = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    if not measured.tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    program = MEASURE.format(paths=measured.paths, setup=measured.setup, first=measured.first, body=measured.body)
    answer = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments
        [sys.executable, "-S", "-c", program], capture_output=True, text=True, check=True, env=environment
    )
    first, body = answer.stdout.strip().splitlines()[-1].split()
    return float(first) * 1000, float(body) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    packages = [str(layer_packages()), str(ROOT / "layers" / "shared")]
    loads = {
        name: LOAD_HANDLER.format(path=str(ROOT / folder / "app.py"), attribute="handler")
        for name, folder in FUNCTIONS.items()
    }
    baseline = Measured("import boto3 (baseline)", "", packages, first="import boto3")
    # A handler's interpreter imports boto3 first, timed on its own: that is the handler's own
    # baseline, taken in the same process a moment before (another process's work on a shared
    # machine moved separate baselines by up to half their time). The handler's import is the sum.
    handlers = [
        Measured(
            f"{name} (functions/{Path(folder).name}/app.py)",
            loads[name],
            [str(ROOT / folder), *packages],
            first="import boto3",
        )
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
    invocations = [
        Measured(label, body, [str(ROOT / FUNCTIONS[name]), *packages], setup=loads[name], tracing=traced)
        for label, body, name, traced in first_invocation
    ]
    # Each round measures every row once, in turn. A first invocation's ratio is to its round's
    # baseline row (its interpreter has imported boto3 before its clock starts).
    rows = [baseline, *handlers, *invocations]
    rounds: dict[str, list[tuple[float, float]]] = {row.label: [] for row in rows}
    for _ in range(args.runs):
        for row in rows:
            rounds[row.label].append(once(row))
    boto3_alone = [first for first, _ in rounds[baseline.label]]
    table = []
    for row in rows:
        times = [first + body for first, body in rounds[row.label]]
        bases = [first for first, _ in rounds[row.label]] if row.first else boto3_alone
        ratio = statistics.median(time / base for time, base in zip(times, bases, strict=True))
        table.append((row.label, statistics.median(times), min(times), ratio))
    print_table(
        f"5. cold start: handler import (processor time), {args.runs} fresh interpreters each, measured in turn",
        ("module", "median ms", "fastest ms", "x boto3 (median of interpreters)"),
        table,
    )


if __name__ == "__main__":
    main()
