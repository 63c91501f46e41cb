"""One job at a time: `status`, `ls`, `download`, `url` and `cancel`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Column, Table

from sora_relay.domain.jobs import Job, JobState
from sora_relay_tools.cli.session import Session, out, shown, user_command
from sora_relay_tools.client import JobNotFound
from sora_relay_tools.client.line import LinePlace
from sora_relay_tools.client.relay import moment_since


def describe(job: Job, place: LinePlace | None = None) -> dict[str, Any]:
    """A job as people read it (and as --json prints it); `place`, its place in the line."""
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
    if place is not None:
        described["waiting"] = {"ahead": place.ahead, "why": place.why}
    if job.request is not None:
        described["model"] = job.request.model
        described["prompt"] = job.request.prompt
    if job.provider is not None:
        described["provider"] = job.provider.model_dump(mode="json", exclude_none=True)
    if job.attempts:  # the models tried before this one (a fallback's)
        described["earlier_attempts"] = [attempt.model_dump(mode="json", exclude_none=True) for attempt in job.attempts]
    if job.final_event is not None and job.final_event.delivered is not None:
        described["delivered"] = job.final_event.delivered.model_dump(mode="json", exclude_none=True)
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


@click.command()
@click.argument("request_id")
@user_command
def status(session: Session, request_id: str) -> None:
    """Show one job's record."""
    job = session.relay.record(request_id)
    if job is None:
        raise JobNotFound(f"no job {request_id!r} (not sent, not yet read by the stack, or expired)")
    described = describe(job, session.relay.line_places([job]).get(request_id))
    if session.as_json:
        session.emit(described)
        return
    # Folded, never cut with "…": a request id, an S3 URI and a SHA-256 are there to be copied.
    table = Table(Column(no_wrap=True), Column(overflow="fold"), show_header=False, box=None)
    for name, value in described.items():
        table.add_row(f"[bold]{name}[/]", shown(value if isinstance(value, str) else json.dumps(value)))
    out.print(table)


def _since(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 moment, or an age such as 30m, 6h, 2d."""
    if value is None:
        return None
    try:
        return moment_since(value)
    except ValueError as error:
        raise click.BadParameter("an ISO 8601 time (2026-11-23T10:00) or an age (30m, 6h, 2d)") from error


@click.command("ls")
@click.option("--state", type=click.Choice([s.value for s in JobState]), help="Only jobs in this state.")
@click.option("--since", callback=_since, help="Only jobs changed since: ISO time or age (30m, 6h, 2d).")
@click.option("--limit", type=int, default=50, show_default=True)
@user_command
def list_jobs(session: Session, state: str | None, since: datetime | None, limit: int) -> None:
    """List jobs, newest first (reads the whole jobs table)."""
    jobs = session.relay.jobs(state=JobState(state) if state else None, since=since)[:limit]
    places = session.relay.line_places(jobs)
    if session.as_json:
        session.emit([describe(job, places.get(job.request_id)) for job in jobs])
        return
    table = Table(
        Column("request_id", overflow="fold", min_width=len("request_id")),
        "state",
        "progress",
        "model",
        "created",
        Column("result", overflow="fold"),
    )
    for job in jobs:
        result = f"held: {job.held}" if job.held is not None else ""
        if job.request_id in places:
            result = f"waiting in line, {places[job.request_id].ahead} ahead: {places[job.request_id].why}"
        if job.final_event is not None:
            result = job.final_event.video.uri if job.final_event.video else str(job.final_event.error.code)  # type: ignore[union-attr]
        model = job.request.model if job.request else ""
        created = f"{job.created_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(shown(job.request_id), job.state.value, f"{job.progress}%", model, created, shown(result))
    out.print(table)


@click.command()
@click.argument("request_id")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("."), help="A directory or file.")
@click.option("--thumbnail", is_flag=True, help="The video's thumbnail instead of the video.")
@user_command
def download(session: Session, request_id: str, output: Path, thumbnail: bool) -> None:
    """Save a job's video (checked against its SHA-256), or its thumbnail; prints the path."""
    path = (
        session.relay.download_thumbnail(request_id, output)
        if thumbnail
        else session.relay.download(request_id, output)
    )
    session.say(str(path), request_id=request_id, path=str(path))


@click.command()
@click.argument("request_id")
@user_command
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


@click.command()
@click.argument("request_id")
@click.option("--expires-in", type=click.IntRange(1, 604800), default=3600, show_default=True, help="Seconds.")
@user_command
def url(session: Session, request_id: str, expires_in: int) -> None:
    """Print a presigned https link to a job's video."""
    link = session.relay.url(request_id, expires_in)
    session.say(link, request_id=request_id, url=link)
