"""Benchmark 6: finished to announced, end to end: from the moment the provider has a video to
its `video.completed` event, for a batch of jobs with spread-out generation times.

    .venv/bin/python benchmarks/announce_lag.py [--jobs 40] [--seed 7]

The local stack on a virtual clock (see sora_relay_tools/local/virtual.py): the template's functions, the
simulator, the poller invoked each minute. Three pollers in the same run, on the same batch:
- fixed 30 s, one sweep a minute: every job asked every 30 s, each invocation sweeping once
  (the baseline);
- fixed 30 s, sweeping within the invocation: the same interval, due times served on time;
- adaptive: the stack as it is (`Policy.next_status_delay`, sweeping within the invocation).
"""

from __future__ import annotations

import argparse
import statistics
from datetime import timedelta
from unittest import mock

from common import TEMPLATE, print_table

from sora_relay.domain.policy import Policy
from sora_relay_tools.local.virtual import BatchRun, plan_jobs, virtual_stack


def fixed_interval(policy: Policy, **_: object) -> timedelta:
    """The baseline's rule: the next status call one poll interval after this one."""
    return policy.poll_interval


def lags(run: BatchRun) -> list[float]:
    found = []
    for job in run.jobs:
        assert job.announced_at is not None, f"{job.request_id} was never announced"
        found.append((job.announced_at - job.finished_at).total_seconds())
    return found


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    runs: dict[str, BatchRun] = {}
    # A place for each job: the lag measured is the poller's, not the line's (benchmark 8).
    with virtual_stack(TEMPLATE, environment={"MAX_ACTIVE_GENERATIONS": str(args.jobs)}) as stack:
        with mock.patch.object(Policy, "next_status_delay", fixed_interval):
            stack.configure(POLL_SWEEP_WINDOW_SECONDS="0")
            runs["fixed 30 s, one sweep a minute"] = stack.run(plan_jobs(args.jobs, args.seed, "fixed-once"))
            stack.configure(POLL_SWEEP_WINDOW_SECONDS="50")
            runs["fixed 30 s, sweeping within the invocation"] = stack.run(plan_jobs(args.jobs, args.seed, "fixed"))
        runs["adaptive (the stack)"] = stack.run(plan_jobs(args.jobs, args.seed, "adaptive"))
    baseline = runs["fixed 30 s, one sweep a minute"]
    base_median = statistics.median(lags(baseline))
    base_calls = statistics.mean(job.status_calls for job in baseline.jobs)
    rows = []
    for name, run in runs.items():
        lag = lags(run)
        calls = statistics.mean(job.status_calls for job in run.jobs)
        rows.append(
            (
                name,
                statistics.median(lag),
                p95(lag),
                max(lag),
                calls,
                statistics.median(lag) / base_median,
                calls / base_calls,
            )
        )
    generation = sorted(job.generation_seconds for job in plan_jobs(args.jobs, args.seed, "x"))
    print_table(
        f"6. finished to announced: {args.jobs} jobs sent at once, generations of {generation[0]:.0f} to "
        f"{generation[-1]:.0f} s (median {statistics.median(generation):.0f} s), PollIntervalSeconds 30, "
        "a poll each minute; lag = video.completed's occurred_at (1 s steps) - when the provider had the video",
        (
            "poller",
            "median lag (s)",
            "p95 lag (s)",
            "max lag (s)",
            "status calls per job",
            "lag / baseline",
            "calls / baseline",
        ),
        rows,
    )


if __name__ == "__main__":
    main()
