"""A batch of jobs through the local stack on a virtual clock, run as AWS would run it.

The functions are the template's, on moto in this process, against the simulator; both read
one virtual clock, so generations of minutes take no time. The poller is invoked at each
minute as its schedule would be, and waits within its invocation as it does on AWS (the
wait passes on the virtual clock); the archive function runs as soon as a hand-off is made,
while the poller waits too, as its queue's trigger would start it. Every invocation's time
is measured: the real time it worked plus the virtual time it waited, which AWS bills too.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sora_relay import wiring
from sora_relay.domain.events import EventType
from sora_relay.domain.policy import typical_generation_time
from sora_relay.domain.request import VideoRequest
from sora_relay.settings import Settings
from sora_relay_tools.local.functions import LocalContext, load_handler
from sora_relay_tools.local.run import function_output_into
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import GeminiGenSimulator, ManualClock

MINUTE = timedelta(minutes=1)
AWS_SWEEP_WINDOW = Settings.model_fields["poll_sweep_window_seconds"].default


@dataclass(frozen=True)
class PlannedJob:
    body: dict[str, Any]
    generation_seconds: float


def plan_jobs(count: int, seed: int, tag: str) -> list[PlannedJob]:
    """Requests of mixed kinds, each taking its kind's typical time times a log-normal spread
    (sigma 0.35), as benchmark 3 draws them."""
    rng = random.Random(seed)  # noqa: S311  # nosec B311  # a reproducible simulation, no secret
    jobs = []
    for number in range(count):
        body = {
            "request_id": f"{tag}-{number}",
            "prompt": f"{tag}: scene {number}",
            "model": "sora-2-pro" if rng.random() < 0.3 else "sora-2",
            "duration": rng.choice([10, 15]),
            "resolution": "large" if rng.random() < 0.4 else "small",
        }
        typical = typical_generation_time(VideoRequest.model_validate(body, strict=False)).total_seconds()
        jobs.append(PlannedJob(body, typical * math.exp(rng.gauss(0, 0.35))))
    return jobs


@dataclass(frozen=True)
class JobResult:
    request_id: str
    finished_at: datetime  # when the provider had the video
    announced_at: datetime | None  # the final event's occurred_at
    status_calls: int


@dataclass
class Usage:
    """What the batch used: invocations (function, billed seconds), AWS calls with their
    parameters and answers, and the batches the queue triggers took."""

    invocations: list[tuple[str, float]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    trigger_batches: Counter[str] = field(default_factory=Counter)
    log_bytes: int = 0


@dataclass
class BatchRun:
    jobs: list[JobResult]
    usage: Usage
    virtual_seconds: float


class VirtualStack:
    def __init__(
        self, template: Path, *, latency: float = 0.0, video_size: int | None = None, environment: dict[str, str]
    ) -> None:
        self._template = template
        self.clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
        self._latency = latency
        self._video_size = video_size
        # As on AWS: the local stack's own default (no waiting within a poll) is for real time.
        self._environment = {"POLL_SWEEP_WINDOW_SECONDS": str(AWS_SWEEP_WINDOW), **environment}
        self._resources = contextlib.ExitStack()
        self._usage = Usage()
        self._waited = 0.0  # virtual seconds the running invocation waited
        self._nested = 0.0  # real seconds of invocations made while another waited
        self._seconds: dict[str, float] = {}  # a planned prompt: how long its generation takes

    def __enter__(self) -> VirtualStack:
        self._logs = io.StringIO()
        self._resources.enter_context(function_output_into(self._logs))
        self.simulator = self._resources.enter_context(
            GeminiGenSimulator(
                clock=self.clock,
                latency=self._latency,
                video_size=self._video_size,
                generation_time=lambda prompt: self._seconds.get(prompt),
            )
        )
        self.stack = self._resources.enter_context(
            LocalStack(
                self._template,
                Provider(self.simulator.base_url, self.simulator.api_key),
                in_process=True,
                drive=False,
                parameters={"PollIntervalSeconds": "30"},
                environment=self._environment,
            )
        )
        self._resources.callback(wiring.reset)
        wiring.reset(
            clock=self.clock,
            sleep=self._wait,
            on_aws_request=lambda name, params: self._usage.calls.append((name, params)),
            on_aws_answer=lambda name, answer: self._usage.answers.append((name, answer)),
        )
        return self

    def __exit__(self, *_: object) -> None:
        self._resources.close()

    def configure(self, **variables: str) -> None:
        """Change the functions' settings between two runs (their services are rebuilt)."""
        self.stack.driver.configure(variables)  # type: ignore[union-attr]
        self.stack.driver.enter_environment(self.stack.deployed.functions["PollFunction"])  # type: ignore[union-attr]
        wiring.rebuild()

    def run(self, planned: list[PlannedJob], *, cap: timedelta = timedelta(hours=3)) -> BatchRun:
        """Send the batch at once, then let the schedule and the triggers run it to its end."""
        self._usage = Usage()
        logged_before = len(self._logs.getvalue().encode())
        started = self.clock.now
        for job in planned:
            self.stack.send(json.dumps(job.body))
            self._usage.calls.append(("sqs.SendMessage", {}))  # the user's
        self._seconds = {job.body["prompt"]: job.generation_seconds for job in planned}
        self.stack.driver.enter_environment(self.stack.deployed.functions["SubmitFunction"])  # type: ignore[union-attr]
        self._deliver_all("SubmitFunction")
        announced: dict[str, datetime] = {}
        wanted = {job.body["request_id"] for job in planned}
        tick = started
        while wanted - set(announced) and self.clock.now - started < cap:
            tick += MINUTE
            self.clock.now = max(self.clock.now, tick)
            self._invoke_poll()
            self._deliver_all("SubmitFunction")  # the requests the line started
            self._deliver_all("ArchiveFunction")
            for event in self.stack.drain_events():
                if EventType(event["event"]).final and event["request_id"] in wanted:
                    announced[event["request_id"]] = datetime.fromisoformat(event["occurred_at"])
        self._usage.log_bytes = len(self._logs.getvalue().encode()) - logged_before
        return BatchRun(self._results(planned, announced), self._usage, (self.clock.now - started).total_seconds())

    def _results(self, planned: list[PlannedJob], announced: dict[str, datetime]) -> list[JobResult]:
        calls = Counter(path.rsplit("/", 1)[-1] for _, path in self.simulator.requests if "/history/" in path)
        by_prompt = {generation.fields["prompt"]: generation for generation in self.simulator.submissions()}
        results = []
        for job in planned:
            generation = by_prompt[job.body["prompt"]]
            finished = generation.created_at + timedelta(seconds=generation.generation_seconds)
            results.append(
                JobResult(
                    job.body["request_id"], finished, announced.get(job.body["request_id"]), calls[generation.uuid]
                )
            )
        return results

    def _wait(self, seconds: float) -> None:
        """A function's pause: what the triggers would start meanwhile runs, then time passes."""
        self._deliver_all("SubmitFunction")
        self._deliver_all("ArchiveFunction")
        self.clock.advance(timedelta(seconds=seconds))
        self._waited += seconds

    def _invoke_poll(self) -> None:
        self._waited, self._nested = 0.0, 0.0
        schedule = next(s for s in self.stack.deployed.schedules if s.function == "PollFunction")  # type: ignore[union-attr]
        self.stack.driver.run_schedule_once(schedule, invoke=functools.partial(self._invoke, outermost=True))  # type: ignore[union-attr]

    def _deliver_all(self, logical_id: str) -> None:
        trigger = next(t for t in self.stack.deployed.queue_triggers if t.function == logical_id)  # type: ignore[union-attr]
        driver = self.stack.driver
        assert driver is not None
        while messages := driver.receive(trigger):
            self._usage.trigger_batches[logical_id] += 1
            driver.deliver(trigger, messages, invoke=functools.partial(self._invoke, outermost=False))

    def _invoke(self, logical_id: str, event: dict[str, Any], *, outermost: bool) -> Any:
        """The function's handler, called directly (an archive may run while the poller waits,
        which the driver's one-at-a-time invocations would not allow); the functions share
        one environment, the template's globals."""
        function = self.stack.deployed.functions[logical_id]  # type: ignore[union-attr]
        if outermost:
            self.stack.driver.enter_environment(function)  # type: ignore[union-attr]
        handler = load_handler(function.code_dir, function.handler)
        context = LocalContext(function_name=function.name, timeout_seconds=function.timeout)
        started = time.perf_counter()
        answer = handler(event, context)
        worked = time.perf_counter() - started
        if outermost:
            billed = worked - self._nested + self._waited
        else:
            billed = worked
            self._nested += worked
        self._usage.invocations.append((logical_id, billed))
        return answer


@contextlib.contextmanager
def virtual_stack(template: Path, **options: Any) -> Iterator[VirtualStack]:
    with VirtualStack(template, **options) as stack:
        yield stack
