"""The `sora-relay` command: send requests, follow them, fetch videos, watch events.

Results go to standard output (one JSON document, or JSON Lines for streams, with --json);
progress and errors go to standard error. Exit codes are listed in `EXIT_CODES`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sora_relay.cli.local import local
from sora_relay.client import (
    CannotCancel,
    JobHandle,
    JobNotFound,
    NotArchived,
    Relay,
    RelayError,
    StackNotFound,
    WaitTimedOut,
)
from sora_relay.events import FINAL_EVENTS_FILTER_POLICY, VideoEvent
from sora_relay.jobs import Job, JobState
from sora_relay.request import AspectRatio, Model, Resolution

EXIT_OK = 0
EXIT_FAILED = 1  # a job ended in video.failed, or some of a batch did not make it
EXIT_USAGE = 2  # bad arguments, or a request that breaks the contract (never sent)
EXIT_NOT_FOUND = 3  # no such stack, job or video
EXIT_TIMED_OUT = 4  # --wait gave up before the final event
EXIT_AWS = 5  # AWS refused or could not be reached
EXIT_NOT_CANCELED = 6  # cancel came too late: the provider has (or may have) the request
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "a job failed (or part of a batch)",
    EXIT_USAGE: "usage error or invalid request",
    EXIT_NOT_FOUND: "stack, job or video not found",
    EXIT_TIMED_OUT: "timed out waiting",
    EXIT_AWS: "AWS error",
    EXIT_NOT_CANCELED: "too late to cancel",
}
# Subscription filters can use the event's message attributes (contract section 2).
FILTER_ATTRIBUTES = ("event", "request_id", "model")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

# C0 and C1 control characters (ESC starts terminal sequences) and the bidirectional overrides
# that make text read otherwise than it is.
_UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: object) -> str:
    """Text from users, the provider or AWS, as rich prints it literally: its markup escaped,
    its control characters spelled out (\\x1b) rather than acted on by the terminal."""
    spelled = _UNSHOWABLE.sub(lambda match: match.group().encode("unicode_escape").decode(), str(text))
    return escape(spelled)


Command = TypeVar("Command", bound=Callable[..., Any])


class Session:
    """What every user command shares: the stack, and whether to speak JSON."""

    def __init__(self, stack: str, as_json: bool) -> None:
        self.stack = stack
        self.as_json = as_json

    @functools.cached_property
    def relay(self) -> Relay:
        return Relay.from_stack(self.stack)

    def emit(self, document: Any) -> None:
        if self.as_json:
            click.echo(json.dumps(document))
        else:
            out.print_json(json.dumps(document))

    def say(self, text: str, **document: Any) -> None:
        """One result: `text` for people, `document` for --json."""
        if self.as_json:
            self.emit(document)
        else:
            out.print(shown(text))


def _user_command(function: Command) -> Command:
    """--stack and --json, and errors turned into a message and an exit code."""

    @click.option(
        "--stack",
        envvar="SORA_RELAY_STACK",
        default="sora-relay",
        show_default=True,
        help="The stack's CloudFormation name (or set SORA_RELAY_STACK).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output on standard output.")
    @functools.wraps(function)
    def command(stack: str, as_json: bool, **arguments: Any) -> None:
        session = Session(stack, as_json)
        try:
            function(session, **arguments)
        except (StackNotFound, JobNotFound, NotArchived) as error:
            _fail(session, EXIT_NOT_FOUND, str(error))
        except WaitTimedOut as error:
            _fail(session, EXIT_TIMED_OUT, str(error))
        except CannotCancel as error:
            _fail(session, EXIT_NOT_CANCELED, str(error))
        except RelayError as error:
            _fail(session, EXIT_USAGE, str(error))
        except (ClientError, BotoCoreError) as error:
            _fail(session, EXIT_AWS, f"AWS: {error}")

    return command  # type: ignore[return-value]


def _fail(session: Session, code: int, message: str) -> None:
    if session.as_json:
        click.echo(json.dumps({"error": message, "exit_code": code}))
    err.print(f"[red]error:[/] {shown(message)}")
    sys.exit(code)


@click.group(epilog="Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()))
@click.version_option(package_name="sora-relay")
def main() -> None:
    """sora-relay: a queue in front of GeminiGen's Sora API. Drop requests, get videos in S3."""


main.add_command(local)

# --- submit --------------------------------------------------------------------------------


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


@main.command()
@click.argument("prompt")
@click.option("--model", type=click.Choice([m.value for m in Model]), help="Default sora-2.")
@click.option("--duration", type=click.Choice(["10", "15"]), help="Seconds; default 10.")
@click.option("--resolution", type=click.Choice([r.value for r in Resolution]), help="Default small (720p).")
@click.option("--aspect-ratio", type=click.Choice([a.value for a in AspectRatio]), help="Default landscape.")
@click.option("--file", "files", multiple=True, help="Reference: a local path (uploaded), s3:// or https://.")
@click.option("--meta", "metadata", multiple=True, callback=_key_value, help="KEY=VALUE, echoed in the events.")
@click.option("--request-id", help="Your idempotency key (default: the SQS message id).")
@_wait_options
@_user_command
def submit(
    session: Session,
    prompt: str,
    model: str | None,
    duration: str | None,
    resolution: str | None,
    aspect_ratio: str | None,
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
        duration=int(duration) if duration else None,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
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


# --- submit-many ---------------------------------------------------------------------------


@main.command("submit-many")
@click.argument("requests_file", metavar="FILE.jsonl", type=click.File("r"))
@_wait_options
@_user_command
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


# --- status, ls ----------------------------------------------------------------------------


def describe(job: Job) -> dict[str, Any]:
    """A job as people read it (and as --json prints it)."""
    described: dict[str, Any] = {
        "request_id": job.request_id,
        "state": job.state.value,
        "progress": job.progress,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "status_checks": job.status_checks,
    }
    if job.held is not None:
        described["held"] = job.held
    if job.request is not None:
        described["model"] = job.request.model.value
        described["prompt"] = job.request.prompt
    if job.provider is not None:
        described["provider"] = job.provider.model_dump(mode="json", exclude_none=True)
    if job.metadata:
        described["metadata"] = job.metadata
    if job.final_event is not None:
        if job.final_event.video is not None:
            described["video"] = job.final_event.video.model_dump(mode="json")
        if job.final_event.thumbnail is not None:
            described["thumbnail"] = job.final_event.thumbnail.model_dump(mode="json")
        if job.final_event.error is not None:
            described["error"] = job.final_event.error.model_dump(mode="json")
    return described


@main.command()
@click.argument("request_id")
@_user_command
def status(session: Session, request_id: str) -> None:
    """Show one job's record."""
    job = session.relay.record(request_id)
    if job is None:
        raise JobNotFound(f"no job {request_id!r} (not sent, not yet read by the stack, or expired)")
    described = describe(job)
    if session.as_json:
        session.emit(described)
        return
    table = Table(show_header=False, box=None)
    for name, value in described.items():
        table.add_row(f"[bold]{name}[/]", shown(value if isinstance(value, str) else json.dumps(value)))
    out.print(table)


def _since(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 moment, or an age such as 30m, 6h, 2d."""
    if value is None:
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1] in units:
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter("an ISO 8601 time (2026-11-23T10:00) or an age (30m, 6h, 2d)") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@main.command("ls")
@click.option("--state", type=click.Choice([s.value for s in JobState]), help="Only jobs in this state.")
@click.option("--since", callback=_since, help="Only jobs changed since: ISO time or age (30m, 6h, 2d).")
@click.option("--limit", type=int, default=50, show_default=True)
@_user_command
def list_jobs(session: Session, state: str | None, since: datetime | None, limit: int) -> None:
    """List jobs, newest first (reads the whole jobs table)."""
    jobs = session.relay.jobs(state=JobState(state) if state else None, since=since)[:limit]
    if session.as_json:
        session.emit([describe(job) for job in jobs])
        return
    table = Table("request_id", "state", "progress", "model", "created", "result")
    for job in jobs:
        result = f"held: {job.held}" if job.held is not None else ""
        if job.final_event is not None:
            result = job.final_event.video.uri if job.final_event.video else str(job.final_event.error.code)  # type: ignore[union-attr]
        model = job.request.model.value if job.request else ""
        created = f"{job.created_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(shown(job.request_id), job.state.value, f"{job.progress}%", model, created, shown(result))
    out.print(table)


# --- download, url -------------------------------------------------------------------------


@main.command()
@click.argument("request_id")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("."), help="A directory or file.")
@click.option("--thumbnail", is_flag=True, help="The video's thumbnail instead of the video.")
@_user_command
def download(session: Session, request_id: str, output: Path, thumbnail: bool) -> None:
    """Save a job's video (checked against its SHA-256), or its thumbnail; prints the path."""
    path = (
        session.relay.download_thumbnail(request_id, output)
        if thumbnail
        else session.relay.download(request_id, output)
    )
    session.say(str(path), request_id=request_id, path=str(path))


# --- cancel --------------------------------------------------------------------------------


@main.command()
@click.argument("request_id")
@_user_command
def cancel(session: Session, request_id: str) -> None:
    """End a request before it is submitted: it is never sent to the provider, and its final
    event is video.failed (canceled). A request already submitted cannot be canceled (exit 6)."""
    canceled = session.relay.cancel(request_id)
    if canceled.already:
        text = f"{request_id} was canceled already"
    elif canceled.before_read:
        text = f"{request_id} canceled: the stack had not read it yet, and will never submit it"
    else:
        text = f"{request_id} canceled: it will never be submitted"
    session.say(
        text, request_id=request_id, canceled=True, event=canceled.event.model_dump(mode="json", exclude_none=True)
    )


@main.command()
@click.argument("request_id")
@click.option("--expires-in", type=click.IntRange(1, 604800), default=3600, show_default=True, help="Seconds.")
@_user_command
def url(session: Session, request_id: str, expires_in: int) -> None:
    """Print a presigned https link to a job's video."""
    link = session.relay.url(request_id, expires_in)
    session.say(link, request_id=request_id, url=link)


# --- events --------------------------------------------------------------------------------


def filter_policy(filters: tuple[str, ...]) -> dict[str, list[Any]]:
    """SNS filter policy from KEY=VALUE pairs (a trailing * matches a prefix; one key's values OR)."""
    policy: dict[str, list[Any]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or key not in FILTER_ATTRIBUTES:
            raise click.BadParameter(f"{text!r}: use KEY=VALUE with KEY one of {', '.join(FILTER_ATTRIBUTES)}")
        policy.setdefault(key, []).append({"prefix": value[:-1]} if value.endswith("*") else value)
    return policy


@main.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing until interrupted.")
@click.option("--filter", "filters", multiple=True, help="KEY=VALUE on event, request_id or model (VALUE* = prefix).")
@click.option("--finals", is_flag=True, help="Only video.completed and video.failed.")
@click.option("--count", type=int, help="Stop after this many events.")
@click.option("--timeout", type=float, default=20, show_default=True, help="Without --follow, listen this long.")
@_user_command
def events(
    session: Session, follow: bool, filters: tuple[str, ...], finals: bool, count: int | None, timeout: float
) -> None:
    """Print the stack's events as they come (through a temporary subscribed queue, removed after)."""
    policy = filter_policy(filters)
    if finals:
        if "event" in policy:
            raise click.BadParameter("use --finals or --filter event=..., not both", param_hint="--finals")
        policy.update(FINAL_EVENTS_FILTER_POLICY)
    seen = 0
    with session.relay.events(policy or None) as stream:
        err.print("listening for events (Ctrl-C stops)" if follow else f"listening for {timeout:.0f} s")
        for event in _stream(stream, follow, timeout):
            if session.as_json:
                click.echo(event.to_json())
            else:
                out.print(_one_line(event))
            seen += 1
            if count is not None and seen >= count:
                return


def _stream(stream: Any, follow: bool, timeout: float) -> Iterator[VideoEvent]:
    deadline = time.monotonic() + timeout
    try:
        while follow or time.monotonic() < deadline:
            yield from stream.receive(wait_seconds=1)
    except KeyboardInterrupt:
        return


def _one_line(event: VideoEvent) -> str:
    if event.video is not None:
        outcome, colour = event.video.uri, "green"
    elif event.error is not None:
        outcome, colour = f"{event.error.code}: {event.error.message}", "red"
    elif event.progress is not None:
        outcome, colour = f"{event.progress}%", "cyan"
    else:
        credit = event.provider.estimated_credit if event.provider else None
        outcome, colour = (f"estimated {credit:g} credits" if credit is not None else ""), "blue"
    return f"{event.occurred_at}  [{colour}]{event.event.value:<15}[/]  {shown(event.request_id)}  {shown(outcome)}"


# --- dead letters --------------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """The dead-letter queues: what failed too often."""


@dlq.command("ls")
@_user_command
def dlq_list(session: Session) -> None:
    """Each dead-letter queue and how many messages wait in it."""
    queues = session.relay.dead_letter_queues()
    if session.as_json:
        session.emit([{"name": q.name, "depth": q.depth, "url": q.url, "source": q.source_url} for q in queues])
        return
    table = Table("queue", "messages", "url")
    for queue in queues:
        table.add_row(shown(queue.name), str(queue.depth), shown(queue.url))
    out.print(table)


@dlq.command("redrive")
@click.argument("names", nargs=-1)
@_user_command
def dlq_redrive(session: Session, names: tuple[str, ...]) -> None:
    """Move messages back to their source queue (NAMES: requests, archive, sweeps; default all)."""
    queues = session.relay.dead_letter_queues()
    unknown = set(names) - {queue.name for queue in queues}
    if unknown:
        raise click.BadParameter(f"no dead-letter queue {', '.join(sorted(unknown))}", param_hint="NAMES")
    moved = {queue.name: session.relay.redrive(queue) for queue in queues if not names or queue.name in names}
    if session.as_json:
        session.emit({"moved": moved})
        return
    for name, count in moved.items():
        out.print(f"{shown(name)}: {count} moved back")
