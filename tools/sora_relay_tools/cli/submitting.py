"""`submit` and `submit-many`: send requests, and with --wait follow them to their final events."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sora_relay.domain.events import VideoEvent
from sora_relay.domain.jobs import Job
from sora_relay_tools.cli.session import EXIT_FAILED, EXIT_OK, Command, Session, err, out, shown, user_command
from sora_relay_tools.client import JobHandle, WaitTimedOut


def _key_value(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        pairs[key] = text
    return pairs


def _wait_options(function: Command) -> Command:
    function = click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to --wait.")(
        function
    )
    function = click.option(
        "--download",
        "download_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Wait, then save each video in this directory.",
    )(function)
    return click.option("--wait", is_flag=True, help="Follow until the final event.")(function)


@click.command()
@click.argument("prompt")
@click.option("--model", help="A model of `sora-relay models` (default: the stack's DefaultModel).")
@click.option("--duration", type=int, help="Seconds, as the model takes (see `sora-relay models`).")
@click.option("--resolution", help="As the model's family spells it: small, large, 720p, 1080p, 480p...")
@click.option("--aspect-ratio", help="As the model's family spells it: landscape, portrait, 16:9, 9:16, 1:1...")
@click.option("--mode", help="Kling, Seedance and Grok: standard, professional, fast, pro, normal...")
@click.option("--mode-image", help="Veo, with reference images: frame or ingredient.")
@click.option("--extend", help="Continue the video of this earlier request_id (no model or settings).")
@click.option(
    "--fallback",
    "fallbacks",
    multiple=True,
    help="A model to try after a failure that cost nothing (repeat for more, in order; default: FallbackModels).",
)
@click.option("--skip-audio", is_flag=True, default=None, help="Grok: make the video without sound.")
@click.option("--file", "files", multiple=True, help="Reference image: a local path (uploaded), s3:// or https://.")
@click.option("--meta", "metadata", multiple=True, callback=_key_value, help="KEY=VALUE, echoed in the events.")
@click.option("--request-id", help="Your idempotency key (default: the SQS message id).")
@_wait_options
@user_command
def submit(
    session: Session,
    prompt: str,
    model: str | None,
    duration: int | None,
    resolution: str | None,
    aspect_ratio: str | None,
    mode: str | None,
    mode_image: str | None,
    extend: str | None,
    fallbacks: tuple[str, ...],
    skip_audio: bool | None,
    files: tuple[str, ...],
    metadata: dict[str, str],
    request_id: str | None,
    wait: bool,
    download_dir: Path | None,
    timeout: float,
) -> None:
    """Send one request for PROMPT; prints its request_id (or, with --wait, the video's S3 URI)."""
    job = session.relay.submit(
        prompt,
        model=model,
        duration=duration,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        mode=mode,
        mode_image=mode_image,
        extend=extend,
        fallback=list(fallbacks) or None,
        skip_audio=skip_audio,
        files=files,
        metadata=metadata,
        request_id=request_id,
    )
    if not (wait or download_dir):
        session.say(job.request_id, request_id=job.request_id)
        return
    err.print(f"sent [bold]{shown(job.request_id)}[/]")
    event = _follow_one(job, timeout)
    _finish([event], download_dir, session)


def _follow_one(job: JobHandle, timeout: float) -> VideoEvent:
    with _progress() as progress:
        task = progress.add_task(f"{shown(job.request_id)}: queued", total=100)

        def show(record: Job | None) -> None:
            if record is not None:
                description = f"{shown(job.request_id)}: {record.state}"
                progress.update(task, completed=record.progress, description=description)

        event = job.wait(timeout, on_update=show)
        if event.video is not None:
            progress.update(task, completed=100, description=f"{shown(job.request_id)}: archived")
    return event


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _finish(
    events: list[VideoEvent], download_dir: Path | None, session: Session, *, more_failed: bool = False
) -> None:
    """Print each final event's outcome (and download the videos); exit 1 if any failed."""
    if download_dir is not None:
        download_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for event in events:
        result: dict[str, Any] = {"request_id": event.request_id, "event": event.event.value}
        if event.video is not None:
            result["uri"] = event.video.uri
            if download_dir is not None:
                result["path"] = str(session.relay.download(event.request_id, download_dir))
        elif event.error is not None:
            result["error"] = event.error.model_dump(mode="json")
        results.append(result)
        if not session.as_json:
            _print_result(result)
    if session.as_json:
        session.emit(results[0] if len(results) == 1 else results)
    if more_failed or any("error" in result for result in results):
        sys.exit(EXIT_FAILED)


def _print_result(result: dict[str, Any]) -> None:
    if "error" in result:
        error = result["error"]
        err.print(f"[red]{shown(result['request_id'])} failed ({error['code']}):[/] {shown(error['message'])}")
        return
    out.print(shown(result["uri"]))
    if "path" in result:
        err.print(f"saved {shown(result['path'])}")


@click.command("submit-many")
@click.argument("requests_file", metavar="FILE.jsonl", type=click.File("r"))
@_wait_options
@user_command
def submit_many(session: Session, requests_file: Any, wait: bool, download_dir: Path | None, timeout: float) -> None:
    """Send one request per line of FILE.jsonl (- for standard input), ten to an SQS batch."""
    bodies: list[dict[str, Any]] = []
    line_of: list[int] = []  # each body's line number
    unreadable: list[tuple[int, str]] = []
    for number, line in enumerate(requests_file, 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as error:
            unreadable.append((number, f"not JSON: {error}"))
            continue
        if not isinstance(body, dict):
            unreadable.append((number, "not a JSON object"))
            continue
        bodies.append(body)
        line_of.append(number)
    with _progress() as progress:
        task = progress.add_task("sending", total=len(bodies))
        handles, rejected = session.relay.send_many(bodies, on_sent=lambda n: progress.advance(task, n))
    problems = sorted(unreadable + [(line_of[r.index], r.reason) for r in rejected])
    summary = {"sent": [h.request_id for h in handles], "rejected": [{"line": n, "reason": r} for n, r in problems]}
    if not session.as_json:
        err.print(f"sent {len(handles)}, rejected {len(problems)}")
        for number, reason in problems:
            err.print(f"[red]line {number}:[/] {shown(reason)}")
    if not (wait or download_dir):
        if session.as_json:
            session.emit(summary)
        else:
            for handle in handles:
                out.print(shown(handle.request_id))
        sys.exit(EXIT_FAILED if problems else EXIT_OK)
    events = _follow_many(handles, timeout)
    if not session.as_json:
        _print_tally(events)
    _finish(events, download_dir, session, more_failed=bool(problems))


def _follow_many(handles: list[JobHandle], timeout: float) -> list[VideoEvent]:
    finished: dict[str, VideoEvent] = {}
    deadline = time.monotonic() + timeout
    with _progress() as progress:
        task = progress.add_task("generating", total=len(handles))
        while len(finished) < len(handles):
            for handle in handles:
                if handle.request_id in finished:
                    continue
                record = handle.record()
                if record is not None and record.published_event is not None:
                    finished[handle.request_id] = record.published_event
            failed = sum(1 for event in finished.values() if event.error)
            progress.update(task, completed=len(finished), description=f"generating ({failed} failed)")
            if len(finished) < len(handles):
                if time.monotonic() >= deadline:
                    raise WaitTimedOut(f"{len(handles) - len(finished)} jobs have no final event after {timeout:.0f} s")
                time.sleep(2)
    return [finished[handle.request_id] for handle in handles]


def _print_tally(events: list[VideoEvent]) -> None:
    table = Table("event", "jobs", title="summary")
    for kind in sorted({event.event.value for event in events}):
        table.add_row(kind, str(sum(1 for event in events if event.event.value == kind)))
    err.print(table)
