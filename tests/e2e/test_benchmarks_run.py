"""The end-to-end benchmarks run from a clean checkout and print their figures (small batches here;
`make bench` runs them at full size)."""

import subprocess  # nosec B404
import sys

from ..support.paths import ROOT


def benchmark(script: str, *arguments: str) -> str:
    done = subprocess.run(  # noqa: S603  # nosec B603  # our own interpreter and scripts
        [sys.executable, script, *arguments],
        cwd=ROOT / "benchmarks",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_announce_lag_benchmark_reports_each_poller() -> None:
    printed = benchmark("announce_lag.py", "--jobs", "4")
    for poller in ("fixed 30 s, one sweep a minute", "fixed 30 s, sweeping within the invocation", "adaptive"):
        assert poller in printed


def test_cost_benchmark_prices_the_batch_per_thousand_videos() -> None:
    printed = benchmark("cost.py", "--jobs", "2", "--video-mib", "1", "--latency", "0")
    assert "1,000 videos: $" in printed
    assert "DynamoDB" in printed


def test_line_benchmark_compares_the_makespan_with_the_ideal_and_prices_waiting() -> None:
    printed = benchmark("line.py", "--jobs", "60", "--places", "4")
    assert "ideal schedule (arrival order, no gap)" in printed
    assert "waiting's cost per request" in printed


def test_submit_batch_benchmark_submits_every_request_of_each_run() -> None:
    printed = benchmark("submit_batch.py", "--latency", "0.05")
    assert "concurrent (SUBMIT_CONCURRENCY=10)" in printed
