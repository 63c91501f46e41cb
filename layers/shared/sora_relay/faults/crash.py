"""Crash anywhere: kill an invocation at its k-th AWS or provider call, let the system carry on,
then check that every request still ends once, paid once, with a whole video."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sora_relay import wiring
from sora_relay.local.deploy import QueueTrigger
from sora_relay.local.stack import LocalStack, Provider
from sora_relay.simulator import Fault, GeminiGenSimulator, ManualClock

SUBMIT_CALL = "http.POST /uapi/v1/video-gen/sora"
# Between two rounds of invocations, more time passes than any lease, retry delay or watchdog.
ROUND = timedelta(minutes=21)
MAX_ROUNDS = 12


class ContainerDied(BaseException):
    """Raised from an SDK or HTTP call, like a Lambda timeout or a dead container: it is a
    BaseException so that no `except Exception` in the code under test can absorb it."""


@dataclass
class CrashInjector:
    """Counts the outbound calls made inside invocations, and kills the one at `crash_at`."""

    crash_at: int | None = None
    calls: list[str] = field(default_factory=list)
    crashed_after: list[str] = field(default_factory=list)  # the calls up to and including the crash
    _inside: bool = False
    _dead: bool = False

    def __call__(self, call: str) -> None:
        if not self._inside:
            return
        if self._dead:  # a dead container makes no more calls
            raise ContainerDied(call)
        self.calls.append(call)
        if len(self.calls) == self.crash_at:
            self._dead = True
            self.crashed_after = list(self.calls)
            raise ContainerDied(call)

    @contextlib.contextmanager
    def invocation(self) -> Iterator[None]:
        self._inside, self._dead = True, False
        try:
            yield
        finally:
            self._inside, self._dead = False, False

    @property
    def in_paid_window(self) -> bool:
        """The crash came right after the provider accepted a submission, before it was recorded."""
        return len(self.crashed_after) >= 2 and self.crashed_after[-2] == SUBMIT_CALL


@dataclass(frozen=True)
class Expectation:
    request_id: str
    body: str
    event: str
    error_code: str | None = None


@dataclass
class RunResult:
    crash_at: int | None
    crashed_call: str | None
    in_paid_window: bool
    requests: int
    lost_events: int = 0
    conflicting_events: int = 0
    unexpected_outcomes: int = 0
    duplicate_submissions: int = 0
    corrupt_objects: int = 0
    unfinished_jobs: int = 0
    unmet_faults: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        duplicates_allowed = self.duplicate_submissions == 0 or self.in_paid_window
        return duplicates_allowed and not (
            self.lost_events
            or self.conflicting_events
            or self.unexpected_outcomes
            or self.corrupt_objects
            or self.unfinished_jobs
            or self.unmet_faults
        )


class CrashDrill:
    """One local stack for all runs; each run uses request ids of its own."""

    def __init__(self, template: Path) -> None:
        self.clock = ManualClock()
        self.injector = CrashInjector()
        self._template = template
        self._resources = contextlib.ExitStack()
        self._runs = 0
        self._returned: list[tuple[str, str]] = []

    def __enter__(self) -> CrashDrill:
        self.simulator = self._resources.enter_context(GeminiGenSimulator(clock=self.clock))
        provider = Provider(self.simulator.base_url, self.simulator.api_key)
        self.stack = self._resources.enter_context(
            LocalStack(
                self._template,
                provider,
                in_process=True,
                drive=False,
                parameters={"PollIntervalSeconds": "30"},
                # One submission, job check and part at a time, and one index shard: the k-th call
                # is the same call every run. (With several submissions in flight, a crash in one
                # thread also ends the others: each of those is in the paid window too.)
                environment={
                    "SUBMIT_CONCURRENCY": "1",
                    "POLL_CONCURRENCY": "1",
                    "POLL_SHARDS": "1",
                    "ARCHIVE_CONCURRENCY": "1",
                },
            )
        )
        wiring.reset(clock=self.clock, on_outbound_call=self.injector)
        return self

    def __exit__(self, *_: object) -> None:
        wiring.reset()
        self._resources.close()

    def run(self, crash_at: int | None = None, provider_faults: Sequence[tuple[str, Fault]] = ()) -> RunResult:
        """Three requests (one completes, one the provider refuses, one invalid) to their end."""
        self._runs += 1
        self.injector.crash_at = crash_at
        self.injector.calls.clear()
        self.injector.crashed_after.clear()
        for endpoint, fault in provider_faults:
            self.simulator.inject(endpoint, fault)
        expectations = self._send_requests(f"run{self._runs}")
        events: dict[str, list[dict[str, Any]]] = {e.request_id: [] for e in expectations}
        for _ in range(MAX_ROUNDS):
            self._round()
            for event in self.stack.drain_events():
                events.setdefault(event["request_id"], []).append(event)
            if all(events[e.request_id] for e in expectations) and self._all_settled(expectations):
                break
        result = self._verdict(crash_at, expectations, events)
        unmet = self.simulator.clear_faults()
        if unmet:
            result.unmet_faults = unmet
            result.problems.append(f"{unmet} injected provider faults were never met")
        return result

    def _send_requests(self, prefix: str) -> list[Expectation]:
        expectations = [
            Expectation(
                f"{prefix}-ok",
                json.dumps({"request_id": f"{prefix}-ok", "prompt": f"{prefix}: a fox"}),
                "video.completed",
            ),
            Expectation(
                f"{prefix}-refused",
                json.dumps({"request_id": f"{prefix}-refused", "prompt": f"[fail] {prefix}: a storm"}),
                "video.failed",
                "generation_failed",
            ),
            Expectation(
                f"{prefix}-invalid",
                json.dumps({"request_id": f"{prefix}-invalid", "prompt": ""}),
                "video.failed",
                "invalid_request",
            ),
        ]
        for expectation in expectations:
            self.stack.send(expectation.body)
        return expectations

    def _round(self) -> None:
        """Each trigger queue delivered once, one sweep, then time passes."""
        driver = self.stack.driver
        deployed = self.stack.deployed
        assert driver is not None
        assert deployed is not None
        for trigger in deployed.queue_triggers:
            self._deliver_all(trigger)
        for schedule in deployed.schedules:
            with contextlib.suppress(ContainerDied), self.injector.invocation():
                driver.run_schedule_once(schedule)
        for trigger in deployed.queue_triggers:
            self._deliver_all(trigger)
        self.clock.advance(ROUND)

    def _deliver_all(self, trigger: QueueTrigger) -> None:
        driver = self.stack.driver
        assert driver is not None
        sqs = self.stack.client("sqs")
        while messages := driver.receive(trigger):
            try:
                with self.injector.invocation():
                    failed = driver.deliver(trigger, messages)
            except ContainerDied:
                failed = [message["ReceiptHandle"] for message in messages]
            # The virtual clock passes their visibility timeout (the queue's, or the handler's
            # delay) before the next round: they come back then, not within this one.
            self._returned.extend((trigger.queue_url, handle) for handle in failed)
        for queue_url, handle in self._returned:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        self._returned.clear()

    def _all_settled(self, expectations: list[Expectation]) -> bool:
        for expectation in expectations:
            job = self.stack.job(expectation.request_id)
            if job is None or not job.get("event_published") or "next_check_at" in job:
                return False
        return True

    def _verdict(
        self, crash_at: int | None, expectations: list[Expectation], events: dict[str, list[dict[str, Any]]]
    ) -> RunResult:
        result = RunResult(
            crash_at=crash_at,
            crashed_call=self.injector.crashed_after[-1] if self.injector.crashed_after else None,
            in_paid_window=self.injector.in_paid_window,
            requests=len(expectations),
        )
        s3 = self.stack.client("s3")
        for expectation in expectations:
            received = events.get(expectation.request_id, [])
            event_ids = {event["event_id"] for event in received}
            if not received:
                result.lost_events += 1
                result.problems.append(f"{expectation.request_id}: no final event")
                continue
            if len(event_ids) > 1:
                result.conflicting_events += 1
                result.problems.append(f"{expectation.request_id}: events {sorted(event_ids)}")
            event = received[0]
            code = (event.get("error") or {}).get("code")
            if event["event"] != expectation.event or code != expectation.error_code:
                result.unexpected_outcomes += 1
                result.problems.append(f"{expectation.request_id}: ended {event['event']} ({code})")
            job = self.stack.job(expectation.request_id)
            if job is None or not job.get("event_published") or "next_check_at" in job:
                result.unfinished_jobs += 1
                result.problems.append(f"{expectation.request_id}: job not settled: {job and job.get('state')}")
            prompt = json.loads(expectation.body)["prompt"]
            submitted = len(self.simulator.submissions(prompt=prompt))
            if submitted > 1:
                result.duplicate_submissions += submitted - 1
                result.problems.append(f"{expectation.request_id}: submitted {submitted} times")
            if event["event"] == "video.completed":
                video = event["video"]
                stored = s3.get_object(Bucket=video["bucket"], Key=video["key"])
                digest = hashlib.sha256(stored["Body"].read()).hexdigest()
                if not digest == video["sha256"] == stored["Metadata"].get("sha256"):
                    result.corrupt_objects += 1
                    result.problems.append(f"{expectation.request_id}: object does not match its sha256")
        return result


def summarise(results: list[RunResult]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for result in results:
        totals["crash points"] += result.crash_at is not None
        totals["requests"] += result.requests
        totals["duplicates submitted (paid window)"] += result.duplicate_submissions if result.in_paid_window else 0
        totals["duplicates submitted (elsewhere)"] += 0 if result.in_paid_window else result.duplicate_submissions
        totals["events lost"] += result.lost_events
        totals["conflicting final events"] += result.conflicting_events
        totals["unexpected outcomes"] += result.unexpected_outcomes
        totals["jobs left unfinished"] += result.unfinished_jobs
        totals["objects corrupt"] += result.corrupt_objects
    return dict(totals)
