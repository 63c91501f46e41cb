"""`dlq ls` and `dlq redrive`: what the stack's dead-letter queues hold, and putting it back."""

from __future__ import annotations

import click
from rich.table import Table

from sora_relay_tools.cli.session import Session, out, shown, user_command


@click.group()
def dlq() -> None:
    """The dead-letter queues: what failed too often."""


@dlq.command("ls")
@user_command
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
@user_command
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
