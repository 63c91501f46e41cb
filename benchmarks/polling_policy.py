"""Benchmark 3: a simulated day of 1,000 jobs on a virtual clock: status calls per job, and the
delay from the provider finishing to the status call that sees it, for three pollers.

    .venv/bin/python benchmarks/polling_policy.py [--jobs 1000] [--seed 7]

- fixed 30 s, one sweep a minute: the baseline (a fixed interval on a one-minute schedule);
- fixed 30 s, sweeping within the invocation: the same interval, due times served on time;
- adaptive: the stack's policy (`Policy.next_status_delay`), sweeping within the invocation.

Generation times are the typical time for the request's model, duration and resolution
times a log-normal spread (sigma 0.35); the provider's progress grows linearly to 99 % and
the video is there at 100 %. Invocations start at each minute; one that sweeps within
itself serves a due time at once if it falls in the first `window` seconds of its minute.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common import print_table

from sora_relay.domain.policy import Observation, Policy, trend_start, typical_generation_time
from sora_relay.domain.request import VideoRequest

T0 = datetime(2026, 11, 23, tzinfo=UTC)
MINUTE = 60.0
WINDOW = 50.0


@dataclass(frozen=True)
class SimJob:
    submitted: float
    duration: float  # seconds the provider takes
    request: VideoRequest


def make_jobs(count: int, seed: int) -> list[SimJob]:
    rng = random.Random(seed)  # nosec B311  # a reproducible simulation, no secret
    jobs = []
    for _ in range(count):
        body = {
            "prompt": "x",
            "model": "sora-2-pro" if rng.random() < 0.3 else "sora-2",
            "duration": rng.choice([10, 15]),
            "resolution": "large" if rng.random() < 0.4 else "small",
        }
        request = VideoRequest.model_validate(body, strict=False)
        typical = typical_generation_time(request).total_seconds()
        jobs.append(SimJob(rng.uniform(0, 86_400), typical * math.exp(rng.gauss(0, 0.35)), request))
    return jobs


def served_at(due: float, *, within_invocation: bool) -> float:
    minute = math.floor(due / MINUTE) * MINUTE
    if due == minute or (within_invocation and due - minute <= WINDOW):
        return due
    return minute + MINUTE


Decide = Callable[[SimJob, float, int, int, float | None], float]


def fixed(_: SimJob, __: float, ___: int, ____: int, _____: float | None) -> float:
    return 30.0


def adaptive(policy: Policy) -> Decide:
    def decide(job: SimJob, now: float, progress: int, before: int, before_at: float | None) -> float:
        start = T0 + timedelta(seconds=job.submitted)
        at = T0 + timedelta(seconds=before_at) if before_at is not None else None
        delay = policy.next_status_delay(
            age=timedelta(seconds=now - job.submitted),
            typical=typical_generation_time(job.request),
            latest=Observation(progress, T0 + timedelta(seconds=now)),
            previous=trend_start(before, at, start, moved=progress > before),
        )
        return delay.total_seconds()

    return decide


def simulate(
    jobs: list[SimJob], decide: Decide, *, within_invocation: bool, interval: float
) -> tuple[list[int], list[float]]:
    calls, delays = [], []
    for job in jobs:
        finished = job.submitted + job.duration
        now = served_at(job.submitted + interval, within_invocation=within_invocation)
        count, progress, progress_at = 0, 0, job.submitted
        while True:
            count += 1
            if now >= finished:
                delays.append(now - finished)
                break
            seen = min(99, int(100 * (now - job.submitted) / job.duration))
            delay = decide(job, now, seen, progress, progress_at)
            if seen > progress:
                progress, progress_at = seen, now
            now = served_at(now + delay, within_invocation=within_invocation)
        calls.append(count)
    return calls, delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    jobs = make_jobs(args.jobs, args.seed)
    policy = Policy()
    interval = policy.poll_interval.total_seconds()
    runs = {
        "fixed 30 s, one sweep a minute (baseline)": simulate(jobs, fixed, within_invocation=False, interval=interval),
        "fixed 30 s, sweeping within the invocation": simulate(jobs, fixed, within_invocation=True, interval=interval),
        "adaptive, sweeping within the invocation": simulate(
            jobs, adaptive(policy), within_invocation=True, interval=interval
        ),
    }
    base_calls = statistics.mean(runs["fixed 30 s, one sweep a minute (baseline)"][0])
    rows = []
    for name, (calls, delays) in runs.items():
        ordered = sorted(delays)
        rows.append(
            (
                name,
                statistics.mean(calls),
                statistics.mean(calls) / base_calls,
                statistics.median(ordered),
                ordered[int(0.95 * (len(ordered) - 1))],
            )
        )
    typical = statistics.median(job.duration for job in jobs)
    print_table(
        f"3. polling policy: {args.jobs} jobs over a simulated day (median generation {typical:.0f} s)",
        ("poller", "status calls / job", "x baseline", "median delay (s)", "p95 delay (s)"),
        rows,
    )


if __name__ == "__main__":
    main()
