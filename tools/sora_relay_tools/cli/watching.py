"""`events`: the stack's events as they come, through a queue subscribed for the occasion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import click

from sora_relay.domain.events import FINAL_EVENTS_FILTER_POLICY, VideoEvent
from sora_relay_tools.cli.session import FILTER_ATTRIBUTES, Session, err, out, shown, user_command


def filter_policy(filters: tuple[str, ...]) -> dict[str, list[Any]]:
    """SNS filter policy from KEY=VALUE pairs (a trailing * matches a prefix; one key's values OR)."""
    policy: dict[str, list[Any]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or key not in FILTER_ATTRIBUTES:
            raise click.BadParameter(f"{text!r}: use KEY=VALUE with KEY one of {', '.join(FILTER_ATTRIBUTES)}")
        policy.setdefault(key, []).append({"prefix": value[:-1]} if value.endswith("*") else value)
    return policy


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing until interrupted.")
@click.option(
    "--filter", "filters", multiple=True, help="KEY=VALUE on event, request_id, model or family (VALUE* = prefix)."
)
@click.option("--finals", is_flag=True, help="Only video.completed and video.failed.")
@click.option("--count", type=int, help="Stop after this many events.")
@click.option("--timeout", type=float, default=20, show_default=True, help="Without --follow, listen this long.")
@user_command
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
