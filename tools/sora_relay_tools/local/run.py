"""`make run`: the sample requests through the local stack, with live progress, videos in ./out/."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sora_relay.domain.events import EventType
from sora_relay.domain.families import parse_request
from sora_relay.observability import logger
from sora_relay_tools.local.stack import LocalStack


@dataclass(frozen=True)
class PlannedRequest:
    label: str
    body: str
    expect: str


@dataclass
class Tracked:
    planned: PlannedRequest
    request_id: str
    sent_at: float
    event: dict[str, Any] | None = None  # the final event
    interim: list[dict[str, Any]] = field(default_factory=list)  # video.submitted and video.progress, as they came
    finished_at: float | None = None
    saved_to: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        return self.event is not None and self.event["event"] == self.planned.expect and not self.problems


def plan(events_dir: Path, prompts: tuple[str, ...], *, simulated: bool) -> list[PlannedRequest]:
    """The prompts given, or else the samples that `events/local-run.json` lists."""
    if prompts:
        return [
            PlannedRequest(f"prompt {number}", json.dumps({"prompt": prompt}), "video.completed")
            for number, prompt in enumerate(prompts, 1)
        ]
    manifest = json.loads((events_dir / "local-run.json").read_text())
    return [
        PlannedRequest(entry["file"], (events_dir / entry["file"]).read_text(), entry["expect"])
        for entry in manifest["requests"]
        if simulated or not entry.get("simulator_only", False)
    ]


@contextlib.contextmanager
def function_output_into(sink: TextIO) -> Iterator[TextIO]:
    """The functions' JSON logs and metrics, and the emulator's notes, go to `sink`, not the terminal."""
    handler = logger.registered_handler
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto's notes on resources it does not emulate, and the like
        original = handler.setStream(sink) if isinstance(handler, logging.StreamHandler) else None
        for noisy in ("moto", "werkzeug", "botocore", "sora_relay_tools.local.driver"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        try:
            yield sink
        finally:
            if original is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(original)


@contextlib.contextmanager
def function_output_to(path: Path) -> Iterator[TextIO]:
    """The functions' output in a file, so the terminal shows progress only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as sink, function_output_into(sink):
        yield sink


def run(
    stack: LocalStack,
    planned: list[PlannedRequest],
    *,
    out_dir: Path,
    timeout: float,
    console: Console,
) -> list[Tracked]:
    """Send each request, follow each job to its final event, fetch each video into `out_dir`."""
    tracked = []
    for request in planned:
        message_id = stack.send(request.body)
        tracked.append(Tracked(request, parse_request(request.body, message_id).request_id, time.monotonic()))
    deadline = time.monotonic() + timeout
    with Live(_table(stack, tracked), console=console, refresh_per_second=4) as live:
        while any(t.event is None for t in tracked) and time.monotonic() < deadline:
            _collect_events(stack, tracked)
            live.update(_table(stack, tracked))
            time.sleep(0.25)
        _collect_events(stack, tracked)
        live.update(_table(stack, tracked))
    console.print()
    for job in tracked:
        if job.event is None:
            job.problems.append(f"no final event within {timeout:.0f} s")
        elif job.event["event"] == "video.completed":
            _download(job, out_dir)
    return tracked


def report(tracked: list[Tracked], console: Console) -> bool:
    for job in tracked:
        verdict = "[green]as expected[/]" if job.as_expected else "[red]NOT as expected[/]"
        console.rule(f"{job.planned.label}: {job.request_id} ({verdict})")
        if job.event is not None:
            console.print_json(data=job.event)
        if job.saved_to is not None:
            console.print(f"{job.event['video']['uri'] if job.event else ''} -> {job.saved_to}")
        for problem in job.problems:
            console.print(f"[red]{problem}[/]")
    return all(job.as_expected for job in tracked)


def _collect_events(stack: LocalStack, tracked: list[Tracked]) -> None:
    by_id = {job.request_id: job for job in tracked}
    for event in stack.drain_events():
        job = by_id.get(event["request_id"])
        if job is None:
            continue
        if not EventType(event["event"]).final:
            job.interim.append(event)
            continue
        if "provider" in event and not any(e["event"] == "video.submitted" for e in job.interim):
            job.problems.append("its final event came without a video.submitted before it")
        if job.event is not None:
            if event["event_id"] != job.event["event_id"]:
                job.problems.append(f"a second, different final event: {event['event_id']}")
            continue
        job.event = event
        job.finished_at = time.monotonic()


def _download(job: Tracked, out_dir: Path) -> None:
    assert job.event is not None
    video = job.event["video"]
    target = out_dir / f"{job.request_id}.mp4"
    out_dir.mkdir(parents=True, exist_ok=True)
    boto3.client("s3").download_file(video["bucket"], video["key"], str(target))
    if hashlib.sha256(target.read_bytes()).hexdigest() != video["sha256"]:
        job.problems.append(f"{target} does not match the event's sha256")
    job.saved_to = target


def _table(stack: LocalStack, tracked: list[Tracked]) -> Table:
    table = Table(title="sora-relay, local stack")
    for column in ("request", "request_id", "state", "progress", "elapsed", "result"):
        table.add_column(column)
    now = time.monotonic()
    for job in tracked:
        record = stack.job(job.request_id) or {}
        progress = int(record.get("progress", 0))
        bar = "#" * (progress // 10) + "." * (10 - progress // 10)
        elapsed = (job.finished_at or now) - job.sent_at
        result = ""
        if job.event is not None:
            error = job.event.get("error")
            result = f"{job.event['event']}" + (f" ({error['code']})" if error else "")
        table.add_row(
            job.planned.label,
            job.request_id,
            str(record.get("state", "queued")),
            f"{bar} {progress:3d}%",
            f"{elapsed:5.1f} s",
            result,
        )
    return table
