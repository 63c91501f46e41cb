"""Crash anywhere: kill an invocation at its k-th AWS or provider call, let the system carry on,
then check that every request still ends once, paid once, with a whole video."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sora_relay import wiring
from sora_relay.domain.events import EventType
from sora_relay_tools.local.deploy import QueueTrigger
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import Fault, GeminiGenSimulator, ManualClock

# A submission to the provider, of any family: a new generation or an extension.
SUBMIT_CALLS = ("http.POST /uapi/v1/video-gen/", "http.POST /uapi/v1/video-extend/")
# Between two rounds of invocations, more time passes than any lease, retry delay or watchdog.
ROUND = timedelta(minutes=21)
MAX_ROUNDS = 12
# With a third of the answers lost and a third of the invocations killed, a request may take
# several rounds: each crash also returns the rest of its batch.
LOSSY_ROUNDS = 40
# The crashing drill runs a minute at a time, for at most this many.
CRASHING_MINUTES = 240
_HIDDEN = 12 * 3600  # SQS's longest visibility timeout


class ContainerDied(BaseException):
    """Raised from an SDK or HTTP call, like a Lambda timeout or a dead container: it is a
    BaseException so that no `except Exception` in the code under test can absorb it."""


@dataclass
class CrashInjector:
    """Counts the outbound calls made inside invocations, and kills the one at `crash_at`, or,
    with `kill_after_submitting(share, seed)`, that share of the calls that follow a submission:
    the invocation dies with the provider's answer in hand."""

    crash_at: int | None = None
    after_submitting: float = 0.0
    anywhere: float = 0.0  # the share of every call that kills its invocation
    calls: list[str] = field(default_factory=list)
    crashed_after: list[str] = field(default_factory=list)  # the calls up to and including the crash
    crashes: int = 0
    _inside: bool = False
    _dead: bool = False
    _random: random.Random = field(default_factory=random.Random)

    def kill_after_submitting(self, share: float, seed: int = 0) -> None:
        self.after_submitting = share
        self._random = random.Random(seed)  # nosec B311  # which invocations a drill kills

    def kill_anywhere(self, share: float, seed: int = 0) -> None:
        """That share of all outbound calls, whatever they are, kill their invocation."""
        self.anywhere = share
        self._random = random.Random(seed)  # nosec B311  # which invocations a drill kills

    def __call__(self, call: str) -> None:
        if not self._inside:
            return
        if self._dead:  # a dead container makes no more calls
            raise ContainerDied(call)
        after_a_submission = bool(self.calls) and self.calls[-1].startswith(SUBMIT_CALLS)
        self.calls.append(call)
        drawn = self._random.random()
        if (
            len(self.calls) == self.crash_at
            or (after_a_submission and drawn < self.after_submitting)
            or drawn < self.anywhere
        ):
            self._dead = True
            self.crashes += 1
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
        return len(self.crashed_after) >= 2 and self.crashed_after[-2].startswith(SUBMIT_CALLS)


@dataclass(frozen=True)
class Expectation:
    request_id: str
    body: str
    event: str
    error_code: str | None = None
    # The sha256 of each reference image the request names: its video must be made from them.
    references: tuple[str, ...] = ()
    extends: str | None = None  # the request whose video it continues
    generations: int = 1  # paid for: one per model it tries (a fallback's after a failure that cost nothing)


# The lossy drill's fours, each of one family (its model, its reference field).
LOSSY_MODELS = (
    ("sora-2", "files"),
    ("veo-3.1-fast", "ref_images"),
    ("kling-video-2-6", "ref_images"),
    ("seedance-2", "ref_images"),
    ("grok-3", "files"),
)


# Reference images the lossy drill's twins name (one each: same prompt, other inputs).
REFERENCE_IMAGES = {"red.png": b"\x89PNG red", "blue.png": b"\x89PNG blue"}
_LONG = "a slow pan across a misty valley at dawn, birds rising from the reeds, " * 4


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
    wrong_inputs: int = 0  # videos made from another request's prompt or references
    unfinished_jobs: int = 0
    unmet_faults: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.duplicate_submissions
            or self.lost_events
            or self.conflicting_events
            or self.unexpected_outcomes
            or self.corrupt_objects
            or self.wrong_inputs
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
        self.runs = 0
        self._returned: list[tuple[str, str]] = []
        self._delays: dict[str, int] = {}  # a received message's handle: the delay its handler set
        self._visibilities: dict[str, int] = {}  # a queue: its visibility timeout

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
        # The functions' pauses pass on the virtual clock, as their waits do; the delays they
        # set on failed messages are noted, so that those come back on the virtual clock too.
        wiring.reset(
            clock=self.clock, sleep=self.clock.sleep, on_outbound_call=self.injector, on_aws_request=self._note_delay
        )
        return self

    def _note_delay(self, name: str, params: dict[str, Any]) -> None:
        if name == "sqs.ChangeMessageVisibility":
            self._delays[params["ReceiptHandle"]] = int(params["VisibilityTimeout"])
        elif name == "sqs.ChangeMessageVisibilityBatch":
            for entry in params.get("Entries", []):
                self._delays[entry["ReceiptHandle"]] = int(entry["VisibilityTimeout"])

    def _visibility(self, queue_url: str) -> int:
        if queue_url not in self._visibilities:
            attributes = self.stack.client("sqs").get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._visibilities[queue_url] = int(attributes["VisibilityTimeout"])
        return self._visibilities[queue_url]

    def __exit__(self, *_: object) -> None:
        wiring.reset()
        self._resources.close()

    def run(
        self, crash_at: int | None = None, provider_faults: Sequence[tuple[str, Fault]] = (), *, fallback: bool = False
    ) -> RunResult:
        """Three requests (one completes, one the provider refuses, one invalid) to their end; or,
        `fallback`, one that Veo's filter refuses, which completes on its fallback."""
        self.runs += 1
        self.injector.crash_at = crash_at
        for endpoint, fault in provider_faults:
            self.simulator.inject(endpoint, fault)
        prefix = f"run{self.runs}"
        if fallback:
            expectations = [_falling_back(f"{prefix}-fallback", f"[audio-filtered] {prefix}: a choir in a cave")]
            self.stack.send(expectations[0].body)
        else:
            expectations = self._send_requests(prefix)
        return self._run_to_the_end(crash_at, expectations, MAX_ROUNDS)

    def run_lossy(self, requests: int, *, lost_answers: float, crashes: float, seed: int = 0) -> RunResult:
        """`requests` requests that complete, in fours whose history rows look alike (two of the
        same prompt, cut at a ";", with other reference images; two of the same long prompt),
        and one the provider rejects by policy and one whose address comes behind a bogus host,
        while the provider loses `lost_answers` of its accepted submissions' answers and
        `crashes` of the invocations die right after a submission."""
        self.runs += 1
        self.injector.crash_at = None
        self.simulator.lose_answers(lost_answers, seed)
        self.injector.kill_after_submitting(crashes, seed)
        expectations = self._lossy_requests(f"run{self.runs}", requests)
        for expectation in expectations:
            if expectation.extends is None:
                self.stack.send(expectation.body)
        # An extension names a request the stack has read (else it is invalid at once).
        self._round()
        for expectation in expectations:
            if expectation.extends is not None:
                self.stack.send(expectation.body)
        try:
            return self._run_to_the_end(None, expectations, LOSSY_ROUNDS)
        finally:
            self.simulator.lose_answers(0.0)
            self.injector.kill_after_submitting(0.0)

    def run_crashing(self, requests: int, *, share: float, seed: int = 0) -> tuple[RunResult, dict[str, timedelta]]:
        """`requests` requests (Sora and Veo, distinct prompts) while `share` of every outbound
        call kills its invocation, run a minute at a time: the poll each minute, a message whose
        invocation died back after its queue's visibility timeout, as SQS returns it. The
        result, and how long each request took from its sending to its final event."""
        self.runs += 1
        prefix = f"run{self.runs}"
        expectations = [
            Expectation(
                f"{prefix}-{index}",
                json.dumps(
                    {
                        "request_id": f"{prefix}-{index}",
                        "prompt": f"{prefix} shot {index}: a lighthouse in the rain",
                        "model": "veo-3.1-fast" if index % 2 else "sora-2",
                    }
                ),
                "video.completed",
            )
            for index in range(requests)
        ]
        sent_at = self.clock.now
        for expectation in expectations:
            self.stack.send(expectation.body)
        self.injector.calls.clear()
        self.injector.kill_anywhere(share, seed)
        events: dict[str, list[dict[str, Any]]] = {e.request_id: [] for e in expectations}
        ended: dict[str, timedelta] = {}
        returning: list[tuple[datetime, str, str]] = []  # when a message comes back, its queue, its handle
        try:
            for _ in range(CRASHING_MINUTES):
                self._minute(returning)
                for event in self.stack.drain_events():
                    events.setdefault(event["request_id"], []).append(event)
                    if EventType(event["event"]).final and event["request_id"] not in ended:
                        ended[event["request_id"]] = self.clock.now - sent_at
                if len(ended) == len(expectations) and self._all_settled(expectations):
                    break
        finally:
            self.injector.kill_anywhere(0.0)
        return self._verdict(None, expectations, events), ended

    def _minute(self, returning: list[tuple[datetime, str, str]]) -> None:
        """A minute of the stack's life: the messages due are delivered, the poll runs, and the
        messages the functions sent are delivered; a message whose invocation failed or died
        comes back after its queue's visibility timeout (or the handler's own delay)."""
        driver, deployed, sqs = self.stack.driver, self.stack.deployed, self.stack.client("sqs")
        assert driver is not None
        assert deployed is not None
        for due, queue_url, handle in [item for item in returning if item[0] <= self.clock.now]:
            returning.remove((due, queue_url, handle))
            with contextlib.suppress(Exception):  # deleted meanwhile
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)

        def deliver() -> None:
            for trigger in deployed.queue_triggers:
                for handle in self._failed_deliveries(trigger):
                    delay = self._delays.pop(handle, self._visibility(trigger.queue_url))
                    # Hidden until the virtual clock gets there, whatever the real one does.
                    with contextlib.suppress(Exception):
                        sqs.change_message_visibility(
                            QueueUrl=trigger.queue_url, ReceiptHandle=handle, VisibilityTimeout=_HIDDEN
                        )
                    returning.append((self.clock.now + timedelta(seconds=delay), trigger.queue_url, handle))

        deliver()
        for schedule in deployed.schedules:
            with contextlib.suppress(ContainerDied), self.injector.invocation():
                driver.run_schedule_once(schedule)
        deliver()
        self.clock.advance(timedelta(minutes=1))

    def _lossy_requests(self, prefix: str, requests: int) -> list[Expectation]:
        bucket = self.stack.outputs["ArchiveBucketName"]
        s3 = self.stack.client("s3")
        references = {}
        for name, content in REFERENCE_IMAGES.items():
            s3.put_object(Bucket=bucket, Key=f"inputs/{name}", Body=content, ContentType="image/png")
            references[name] = (f"s3://{bucket}/inputs/{name}", hashlib.sha256(content).hexdigest())
        expectations = []
        for index in range(requests):
            request_id, group = f"{prefix}-{index}", index // 4
            model, field = LOSSY_MODELS[group % len(LOSSY_MODELS)]
            body: dict[str, object] = {"request_id": request_id, "model": model}
            digests: tuple[str, ...] = ()
            if index % 4 < 2:
                uri, digest = references["red.png" if index % 2 else "blue.png"]
                body |= {"prompt": f"{prefix} product {group}; studio light, turntable", field: [uri]}
                digests = (digest,)
            else:
                body["prompt"] = f"{prefix} take {group}: {_LONG}"
            expectations.append(Expectation(request_id, json.dumps(body), "video.completed", references=digests))
        # An extension of the first Veo request (it waits for that video, then continues it).
        extended = next(e for e in expectations if json.loads(e.body)["model"].startswith("veo"))
        extension = f"{prefix}-extension"
        body = {
            "request_id": extension,
            "prompt": f"{prefix}: the camera rises",
            "extend": {"request_id": extended.request_id},
        }
        expectations.append(Expectation(extension, json.dumps(body), "video.completed", extends=extended.request_id))
        rejected, malformed = f"{prefix}-rejected", f"{prefix}-bogus-host"
        expectations += [
            _falling_back(f"{prefix}-fallback", f"[audio-filtered] {prefix}: a choir in a cave"),
            Expectation(
                rejected,
                json.dumps({"request_id": rejected, "prompt": f"[reject] {prefix}: a riot"}),
                "video.failed",
                "generation_failed",
            ),
            Expectation(
                malformed,
                json.dumps({"request_id": malformed, "prompt": f"[bogus-host] {prefix}: a harbour"}),
                "video.completed",
            ),
        ]
        return expectations

    def _run_to_the_end(self, crash_at: int | None, expectations: list[Expectation], rounds: int) -> RunResult:
        self.injector.calls.clear()
        self.injector.crashed_after.clear()
        events: dict[str, list[dict[str, Any]]] = {e.request_id: [] for e in expectations}
        for _ in range(rounds):
            self._round()
            for event in self.stack.drain_events():
                events.setdefault(event["request_id"], []).append(event)
            if all(_final(events[e.request_id]) for e in expectations) and self._all_settled(expectations):
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

    def _failed_deliveries(self, trigger: QueueTrigger) -> list[str]:
        """Every message on the trigger's queue delivered, batch by batch, each batch in an
        invocation the injector may kill; the receipt handles of those that failed or died."""
        driver = self.stack.driver
        assert driver is not None
        failed: list[str] = []
        while messages := driver.receive(trigger):
            try:
                with self.injector.invocation():
                    failed += driver.deliver(trigger, messages)
            except ContainerDied:
                failed += [message["ReceiptHandle"] for message in messages]
        return failed

    def _deliver_all(self, trigger: QueueTrigger) -> None:
        sqs = self.stack.client("sqs")
        # The virtual clock passes their visibility timeout (the queue's, or the handler's
        # delay) before the next round: they come back then, not within this one.
        self._returned.extend((trigger.queue_url, handle) for handle in self._failed_deliveries(trigger))
        for queue_url, handle in self._returned:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        self._returned.clear()

    def _check_inputs(self, expectation: Expectation, uuid: str, result: RunResult) -> None:
        """The request's generation was made from its own prompt and reference images, and an
        extension's continues the generation of the request it extends."""
        generation = self.simulator.generations.get(uuid)
        asked = json.loads(expectation.body)["prompt"]
        extended = self.stack.job(expectation.extends) if expectation.extends else None
        if generation is None or generation.fields.get("prompt") != asked:
            result.wrong_inputs += 1
            result.problems.append(f"{expectation.request_id}: given a generation of another prompt")
        elif tuple(generation.file_digests) != expectation.references:
            result.wrong_inputs += 1
            result.problems.append(f"{expectation.request_id}: given a generation of other reference images")
        elif extended is not None and generation.extends != json.loads(extended["provider"])["uuid"]:
            result.wrong_inputs += 1
            result.problems.append(f"{expectation.request_id}: extends another generation than its earlier request's")

    def _check_fell_back_after(self, expectation: Expectation, event: dict[str, Any], result: RunResult) -> None:
        """A request that fell back did so after its first generation's failure was known: its
        event names that generation, the first of its prompt (never an attempt in doubt)."""
        first = self.simulator.submissions(prompt=json.loads(expectation.body)["prompt"])[0]
        tried = [attempt.get("provider_uuid") for attempt in event.get("attempts", [])]
        if tried[:1] != [first.uuid] or len(tried) != expectation.generations:
            result.unexpected_outcomes += 1
            result.problems.append(f"{expectation.request_id}: attempts {tried}, its first generation {first.uuid}")

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
            every = events.get(expectation.request_id, [])
            received = [event for event in every if EventType(event["event"]).final]
            if received and "provider" in received[0] and not _submitted_first(every):
                result.unexpected_outcomes += 1
                result.problems.append(f"{expectation.request_id}: no video.submitted before its final event")
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
            if event["event"] == "video.completed":
                video = event["video"]
                stored = s3.get_object(Bucket=video["bucket"], Key=video["key"])
                digest = hashlib.sha256(stored["Body"].read()).hexdigest()
                if not digest == video["sha256"] == stored["Metadata"].get("sha256"):
                    result.corrupt_objects += 1
                    result.problems.append(f"{expectation.request_id}: object does not match its sha256")
                if not stored["ContentType"] == video["content_type"] == "video/mp4":
                    result.corrupt_objects += 1
                    result.problems.append(f"{expectation.request_id}: stored as {stored['ContentType']}")
            if "provider" in event:
                self._check_inputs(expectation, event["provider"]["uuid"], result)
            if expectation.generations > 1:
                self._check_fell_back_after(expectation, event, result)
        # Requests with the same prompt (and settings) are paid once each: no more generations.
        # (Its own prompt and references: see _check_inputs.)
        asked: Counter[str] = Counter()
        for expectation in expectations:
            asked[json.loads(expectation.body)["prompt"]] += expectation.generations
        for prompt, count in asked.items():
            submitted = len(self.simulator.submissions(prompt=prompt))
            if submitted > count:
                result.duplicate_submissions += submitted - count
                result.problems.append(f"{prompt!r}: {count} requests, submitted {submitted} times")
        return result


def _falling_back(request_id: str, prompt: str) -> Expectation:
    """A Veo request its audio filter refuses (at no cost): made by Kling, once Veo's failure is known."""
    body = {"request_id": request_id, "prompt": prompt, "model": "veo-3.1-fast", "fallback": ["kling-video-2-6"]}
    return Expectation(request_id, json.dumps(body), "video.completed", generations=2)


def _final(events: list[dict[str, Any]]) -> bool:
    return any(EventType(event["event"]).final for event in events)


def _submitted_first(events: list[dict[str, Any]]) -> bool:
    """Whether a video.submitted came before the first final event."""
    kinds = [EventType(event["event"]) for event in events]
    first_final = next(index for index, kind in enumerate(kinds) if kind.final)
    return EventType.SUBMITTED in kinds[:first_final]


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
        totals["videos of another request's inputs"] += result.wrong_inputs
    return dict(totals)
