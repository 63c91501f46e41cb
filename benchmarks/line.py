"""Benchmark 8: 10,000 requests sent at once to an account of 20 places, through the line, on a
virtual clock.

    .venv/bin/python benchmarks/line.py [--jobs 10000] [--places 20] [--seed 11]

The stack's own services (submit, poll with its line, the finisher) run against in-memory ports
that answer as the jobs table, its two indexes and the queues do (each port call stands for one
AWS request, as the adapters make one call per method; the line's count, a page per some 10,000
waiting requests, is counted as one), and a provider that runs `places` generations at once and refuses more as
GeminiGen does (a capacity 400). Moto would take hours over 10,000 requests: the line drill in
tests/e2e/test_line_drill.py runs the same functions through moto and the simulator at 44.

Generations are drawn as in benchmark 3. The poll runs each minute and sweeps within its
invocation; a request started from the line is delivered to the submit service at once.
Printed: the makespan (first request to last video finished) against the ideal schedule (the
same generations in arrival order on `places` places, no gap) and against ceil(n / places) x
the mean generation; the provider's idle place-time while requests waited; the most running at
once and the refusals; and AWS requests per request, against the same batch with a place for
every request (nothing waits) and against a fifth of the batch (waits five times shorter):
waiting's cost per request is the difference, and it does not grow with the wait.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from common import print_table

from sora_relay.domain.events import VideoObject
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import BreakerState, DayLedger, DuePage, ReferenceFile, StaleJob
from sora_relay.domain.provider import Accepted, GenerationRecord, RetryLater, SubmitOutcome
from sora_relay.domain.request import Priority, VideoRequest
from sora_relay.observability import logger
from sora_relay.services.assembly import Services, Tuning
from sora_relay.services.submit.messages import InboundMessage
from sora_relay_tools.faults.suites import quiet
from sora_relay_tools.local.virtual import PlannedJob, plan_jobs
from sora_relay_tools.places import MemoryPlaces
from sora_relay_tools.simulator import ManualClock

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RANK = {priority.value: rank for rank, priority in enumerate(Priority)}


class Tables(MemoryPlaces):
    """The jobs table with its outstanding and line indexes, and the places item, in memory."""

    def __init__(self) -> None:
        super().__init__()
        # The sweep checks jobs on threads: each write and each read of an index is one
        # request, atomic as DynamoDB's are.
        self._table_lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.outstanding: list[tuple[datetime, str]] = []  # sorted, as the index's sort key
        self.line: list[tuple[int, datetime, str]] = []  # priority rank, arrival, request_id
        self.owners: dict[str, str] = {}
        self.prompts: dict[str, str] = {}

    # --- the JobStore port --------------------------------------------------------------
    def create(self, job: Job) -> bool:
        with self._table_lock:
            if job.request_id in self.jobs:
                return False
            self._index(None, job)
            self.jobs[job.request_id] = job
            return True

    def get(self, request_id: str) -> Job | None:
        return self.jobs.get(request_id)

    def save(self, job: Job) -> None:
        with self._table_lock:
            stored = self.jobs[job.request_id]
            if stored.version != job.version - 1:
                raise StaleJob(job.request_id)
            self._index(stored, job)
            self.jobs[job.request_id] = job

    def _index(self, old: Job | None, new: Job) -> None:
        for entries, key in ((self.outstanding, _due_key), (self.line, _line_key)):
            before, after = (key(old) if old else None), key(new)
            if before != after:
                if before is not None:
                    del entries[bisect.bisect_left(entries, before)]
                if after is not None:
                    bisect.insort(entries, after)

    def due(self, shard: int, now: datetime, limit: int, start: object | None = None) -> DuePage:
        with self._table_lock:
            first = bisect.bisect_right(self.outstanding, start) if start is not None else 0
            page = [key for key in self.outstanding[first : first + limit] if key[0] <= now]
            jobs = [self.jobs[request_id] for _, request_id in page]
        return DuePage(jobs, page[-1] if len(page) == limit else None)

    def next_due(self, shard: int) -> datetime | None:
        with self._table_lock:
            return self.outstanding[0][0] if self.outstanding else None

    def take_sweep(self, shard: int, holder: str, until: datetime, now: datetime) -> bool:
        return True  # one poll at a time here

    def end_sweep(self, shard: int, holder: str) -> None:
        return None

    def own_generation(self, uuid: str, request_id: str) -> bool:
        return self.owners.setdefault(uuid, request_id) == request_id

    def generation_owner(self, uuid: str) -> str | None:
        return self.owners.get(uuid)

    def prompt_holder(self, prompt_key: str) -> str | None:
        return self.prompts.get(prompt_key)

    def take_prompt(self, prompt_key: str, request_id: str, previous: str | None) -> bool:
        if self.prompts.get(prompt_key) not in (previous, request_id):
            return False
        self.prompts[prompt_key] = request_id
        return True

    # --- the LineStore port -------------------------------------------------------------
    def head(self, limit: int) -> list[str]:
        with self._table_lock:
            return [request_id for _, _, request_id in self.line[:limit]]

    def length(self, priority: str) -> tuple[int, datetime | None]:
        rank = RANK[priority]
        start = bisect.bisect_left(self.line, (rank,))
        end = bisect.bisect_left(self.line, (rank + 1,))
        return end - start, self.line[start][1] if end > start else None


def _due_key(job: Job) -> tuple[datetime, str] | None:
    return (job.next_check_at, job.request_id) if job.next_check_at is not None else None


def _line_key(job: Job) -> tuple[int, datetime, str] | None:
    if not job.waiting or job.request is None:
        return None
    return (RANK[job.request.priority.value], job.created_at, job.request_id)


@dataclass
class Account:
    """A provider account that runs `places` generations at once and refuses more."""

    clock: ManualClock
    places: int
    seconds: dict[str, float]
    ends: list[float] = field(default_factory=list)  # a heap of running generations' ends
    spans: list[tuple[float, float]] = field(default_factory=list)
    refusals: int = 0
    most_running: int = 0
    _records: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _now(self) -> float:
        return (self.clock.now - T0).total_seconds()

    def submit(
        self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float, extends: str | None = None
    ) -> SubmitOutcome:
        now = self._now()
        while self.ends and self.ends[0] <= now:
            heapq.heappop(self.ends)
        if len(self.ends) >= self.places:
            self.refusals += 1
            return RetryLater("the provider answered HTTP 400: MAX_PROCESSING_VIDEO_EXCEEDED")
        end = now + self.seconds[request.prompt]
        heapq.heappush(self.ends, end)
        self.most_running = max(self.most_running, len(self.ends))
        self.spans.append((now, end))
        uuid = f"gen-{len(self.spans)}"
        self._records[uuid] = (now, end)
        return Accepted(self._record(uuid, 1, 0))

    def status(self, uuid: str) -> GenerationRecord:
        started, end = self._records[uuid]
        now = self._now()
        if now >= end:
            return self._record(uuid, 2, 100)
        return self._record(uuid, 1, min(99, int(100 * (now - started) / (end - started))))

    def recent_generations(self, since: datetime, within: float) -> list[GenerationRecord]:
        return []

    def _record(self, uuid: str, status: int, percentage: int) -> GenerationRecord:
        fields: dict[str, Any] = {"uuid": uuid, "id": 1, "status": status, "status_percentage": percentage}
        fields |= {"estimated_credit": 30, "expired_at": (self.clock.now + timedelta(days=1)).isoformat()}
        if status == 2:
            fields["video_url"] = f"https://cdn.geminigen.ai/{uuid}.mp4"
        return GenerationRecord.model_validate(fields)


class Counted:
    """A port whose every call is counted as one AWS request."""

    def __init__(self, port: object, name: str, calls: Counter[str]) -> None:
        self._port, self._name, self._calls = port, name, calls

    def __getattr__(self, method: str) -> Any:
        attribute = getattr(self._port, method)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[f"{self._name}.{method}"] += 1
            return attribute(*args, **kwargs)

        return counted


class HealthyModels:
    """Every model's breaker, closed: no generation here fails."""

    def read(self, model: str) -> BreakerState:
        return BreakerState()

    def count_failure(self, model: str, now: datetime, threshold: int) -> BreakerState:
        raise AssertionError("no generation fails in this benchmark")

    def reset(self, model: str) -> None:
        return None

    def take_probe(self, model: str, holder: str, cooled_before: datetime, now: datetime, until: datetime) -> bool:
        return True

    def states(self) -> dict[str, BreakerState]:
        return {}


class Quiet:
    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        return None


@dataclass
class Queue:
    """The request queue (the line's starts) and the archive queue (the copy, done at once)."""

    sent: list[tuple[str, VideoRequest]] = field(default_factory=list)
    archived: Callable[[str], None] = lambda request_id: None

    def resend(self, request_id: str, request: VideoRequest, delay: timedelta = timedelta(0)) -> None:
        self.sent.append((request_id, request))

    def enqueue(self, request_id: str) -> None:
        self.archived(request_id)

    def fan_out(self, shards: list[int]) -> None:
        return None


class Topic:
    def publish(self, event: object) -> None:
        return None


class Ledger:
    def day(self, day: date) -> DayLedger:
        return DayLedger(0, {})

    def quotes(self) -> dict[str, float]:
        return {}

    def reserve(self, attempt_id: str, day: date, amount: float, limit: float) -> bool:
        return True

    def count(self, attempt_id: str, amount: float, *, used: bool) -> None:
        return None

    def release(self, attempt_id: str) -> None:
        return None

    def quote(self, kind: str, amount: float) -> None:
        return None


@dataclass
class Run:
    makespan: float
    spans: list[tuple[float, float]]
    calls: Counter[str]
    refusals: int
    most_running: int
    real_seconds: float


def run(planned: list[PlannedJob], places: int) -> Run:
    clock = ManualClock(T0)
    policy = Policy()
    calls: Counter[str] = Counter()
    tables = Tables()
    account = Account(clock, places, {job.body["prompt"]: job.generation_seconds for job in planned})
    queue = Queue()
    store = Counted(tables, "dynamodb", calls)
    line_store = Counted(tables, "dynamodb", calls)
    sqs = Counted(queue, "sqs", calls)

    def wait(seconds: float) -> None:
        deliver()
        clock.advance(timedelta(seconds=seconds))

    # The services as the stack assembles them, from these in-memory parts.
    parts = SimpleNamespace(
        store=store,
        provider=account,
        files=None,
        publisher=Counted(Topic(), "sns", calls),
        request_queue=sqs,
        archive_queue=sqs,
        sweep_queue=sqs,
        archive=None,
        ledger=Ledger(),
        line_store=line_store,
        breaker_store=Counted(HealthyModels(), "dynamodb", calls),
        metrics=Quiet(),
        clock=clock,
        sleep=wait,
        tuning=Tuning(policy=policy, max_active_generations=places),
    )
    services = Services(parts)  # type: ignore[arg-type]
    finisher, submitter, poller = services.finisher, services.submitter, services.poller

    def archive(request_id: str) -> None:
        job = tables.jobs[request_id]
        key = f"videos/{request_id}.mp4"
        video = VideoObject(bucket="b", key=key, uri=f"s3://b/{key}", size=1, sha256="0" * 64, content_type="video/mp4")
        finisher.archive(job, video, clock.now)
        calls["s3.PutObject"] += 1

    queue.archived = archive

    def deliver() -> None:
        while queue.sent:
            request_id, request = queue.sent.pop(0)
            body = json.dumps({**request.as_message(), "request_id": request_id})
            submitter.handle(InboundMessage(f"start-{request_id}", body))
            calls["sqs.ReceiveMessage"] += 1

    began = time.perf_counter()
    for job in planned:
        calls["sqs.SendMessage"] += 1  # the user's
        submitter.handle(InboundMessage(job.body["request_id"], json.dumps(job.body)))
    tick = T0
    while sum(1 for job in tables.jobs.values() if job.state.final) < len(planned):
        tick += timedelta(minutes=1)
        clock.now = max(clock.now, tick)
        deadline = clock.now + timedelta(minutes=5)
        poller.tend_line()
        poller.sweep_while(lambda deadline=deadline: (deadline - clock.now).total_seconds())
        deliver()
    makespan = max(end for _, end in account.spans)
    return Run(makespan, account.spans, calls, account.refusals, account.most_running, time.perf_counter() - began)


def ideal_makespan(planned: list[PlannedJob], places: int) -> float:
    """Each generation started, in arrival order, the moment a place is free."""
    free_at = [0.0] * places
    for job in planned:
        heapq.heappush(free_at, heapq.heappop(free_at) + job.generation_seconds)
    return max(free_at)


def idle_while_waiting(spans: list[tuple[float, float]], places: int) -> tuple[float, float]:
    """The place-seconds idle from the first request to the last start, and that span."""
    last_start = max(start for start, _ in spans)
    changes = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans if end < last_start])
    idle, running, previous = 0.0, 0, 0.0
    for moment, change in changes:
        idle += max(places - running, 0) * (moment - previous)
        running, previous = running + change, moment
    return idle + max(places - running, 0) * (last_start - previous), last_start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--places", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    planned = plan_jobs(args.jobs, args.seed, "line")
    shorter = planned[: max(args.jobs // 5, 1)]
    # The functions' own logs (a line per sweep, per start...) are not the benchmark's output.
    logger.setLevel(logging.ERROR)
    with quiet():
        lined = run(planned, args.places)
        free = run(planned, args.jobs)
        fifth = run(shorter, args.places)
    ideal = ideal_makespan(planned, args.places)
    mean = sum(job.generation_seconds for job in planned) / len(planned)
    bound = math.ceil(len(planned) / args.places) * mean
    idle, span = idle_while_waiting(lined.spans, args.places)
    runs = (("line", lined, args.jobs), ("free", free, args.jobs), ("fifth", fifth, len(shorter)))
    per_request = {name: sum(result.calls.values()) / count for name, result, count in runs}
    idle_share = f"{100 * idle / (args.places * span):.2f} % of {span / 3600:.1f} h"
    print_table(
        f"Benchmark 8: {args.jobs:,} requests at once, {args.places} places (seed {args.seed})",
        ["measure", "value"],
        [
            ["makespan (first request to last video)", f"{lined.makespan / 3600:.2f} h"],
            ["ideal schedule (arrival order, no gap)", f"{ideal / 3600:.2f} h ({lined.makespan / ideal:.3f}x)"],
            ["ceil(n / places) x mean generation", f"{bound / 3600:.2f} h ({lined.makespan / bound:.3f}x)"],
            ["idle place-time while requests waited", idle_share],
            ["most running at once (places)", f"{lined.most_running} ({args.places})"],
            ["capacity refusals", lined.refusals],
            ["AWS requests per request, through the line", f"{per_request['line']:.2f}"],
            ["the same with a place for each (nothing waits)", f"{per_request['free']:.2f}"],
            ["waiting's cost per request", f"{per_request['line'] - per_request['free']:+.2f}"],
            [f"through the line, {len(shorter):,} requests (waits 5x shorter)", f"{per_request['fifth']:.2f}"],
            ["real time of the line's run", f"{lined.real_seconds:.0f} s"],
        ],
    )
    print_table(
        "Benchmark 8: AWS requests per request, by call (through the line; with a place for each)",
        ["call", "line", "nothing waits"],
        [
            [name, f"{count / args.jobs:.2f}", f"{free.calls[name] / args.jobs:.2f}"]
            for name, count in lined.calls.most_common()
        ],
    )


if __name__ == "__main__":
    main()
