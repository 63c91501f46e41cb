"""Benchmark 8: a batch far larger than the account's places, through the line, on a virtual clock.

    .venv/bin/python benchmarks/line.py [--jobs 10000] [--places 20] [--seed 11]

The stack's functions (moto in this process, the simulator) run a batch sent at once to an
account whose plan runs `places` generations at a time (the simulator refuses more with its
capacity 400), with MaxActiveGenerations set to it. Generations are drawn as in benchmark 3.
Printed: the makespan (first request sent to last video finished at the provider) against the
ideal schedule (the same generations, in arrival order, on `places` places with no gap), the
provider's idle place-time while work waited, the most generations that ran at once and the
capacity refusals, and the AWS requests per request against the same batch run with a place
for every request (nothing waits): the difference is what waiting cost.
"""

from __future__ import annotations

import argparse
import heapq
import time
from collections import Counter
from datetime import timedelta

from common import TEMPLATE, print_table

from sora_relay_tools.local.virtual import BatchRun, PlannedJob, plan_jobs, virtual_stack


def ideal_makespan(planned: list[PlannedJob], places: int) -> float:
    """Each generation started, in arrival order, the moment a place is free."""
    free_at = [0.0] * places
    end = 0.0
    for job in planned:
        start = heapq.heappop(free_at)
        finish = start + job.generation_seconds
        heapq.heappush(free_at, finish)
        end = max(end, finish)
    return end


def idle_while_waiting(spans: list[tuple[float, float]], places: int) -> tuple[float, float]:
    """The place-seconds left idle from the first start to the last, and that span's length."""
    last_start = max(start for start, _ in spans)
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    idle, running, previous = 0.0, 0, 0.0
    for moment, change in moments:
        if moment > last_start:
            idle += max(places - running, 0) * (last_start - previous)
            break
        idle += max(places - running, 0) * (moment - previous)
        running += change
        previous = moment
    return idle, last_start


def run(
    planned: list[PlannedJob], places: int, plan_places: int
) -> tuple[BatchRun, list[tuple[float, float]], int, int]:
    environment = {"MAX_ACTIVE_GENERATIONS": str(places)}
    with virtual_stack(TEMPLATE, environment=environment) as stack:
        stack.simulator.max_running = plan_places
        started = stack.clock.now
        batch = stack.run(planned, cap=timedelta(days=4))
        spans = [
            (
                (generation.created_at - started).total_seconds(),
                (generation.created_at - started).total_seconds() + generation.generation_seconds,
            )
            for generation in stack.simulator.submissions()
        ]
        return batch, spans, stack.simulator.most_running, stack.simulator.capacity_refusals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--places", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    planned = plan_jobs(args.jobs, args.seed, "line")
    ideal = ideal_makespan(planned, args.places)

    began = time.perf_counter()
    lined, spans, most, refusals = run(planned, args.places, args.places)
    lined_seconds = time.perf_counter() - began
    unlined_plan = plan_jobs(args.jobs, args.seed, "free")
    free, _, _, _ = run(unlined_plan, args.jobs, args.jobs)

    finished = [job.finished_at for job in lined.jobs]
    announced = [job for job in lined.jobs if job.announced_at is not None]
    makespan = max(end for _, end in spans)
    idle, span = idle_while_waiting(spans, args.places)
    per_request = len(lined.usage.calls) / args.jobs
    per_request_free = len(free.usage.calls) / args.jobs
    calls = Counter(name for name, _ in lined.usage.calls)
    print_table(
        f"Benchmark 8: {args.jobs:,} requests at once, {args.places} places (seed {args.seed})",
        ["measure", "value"],
        [
            ["videos announced", f"{len(announced):,} of {args.jobs:,}"],
            ["makespan (first sent to last finished)", f"{makespan / 3600:.2f} h"],
            ["ideal (arrival order, no gap)", f"{ideal / 3600:.2f} h"],
            ["makespan / ideal", f"{makespan / ideal:.3f}x"],
            ["ceil(n / places) x mean generation", f"{_mean_bound(planned, args.places) / 3600:.2f} h"],
            ["idle place-time while work waited", f"{100 * idle / (args.places * span):.2f} % of {span / 3600:.2f} h"],
            ["most generations at once (plan's limit)", f"{most} ({args.places})"],
            ["capacity refusals", refusals],
            ["AWS requests per request, through the line", f"{per_request:.1f}"],
            ["AWS requests per request, nothing waiting", f"{per_request_free:.1f}"],
            ["waiting's cost per request", f"{per_request - per_request_free:+.1f}"],
            ["real time of the line's run", f"{lined_seconds:.0f} s"],
        ],
    )
    print_table(
        "Benchmark 8: AWS requests through the line, by call (per request)",
        ["call", "per request"],
        [[name, f"{count / args.jobs:.2f}"] for name, count in calls.most_common(12)],
    )
    assert len(finished) == args.jobs


def _mean_bound(planned: list[PlannedJob], places: int) -> float:
    mean = sum(job.generation_seconds for job in planned) / len(planned)
    return -(-len(planned) // places) * mean


if __name__ == "__main__":
    main()
