"""`keys`: the HTTP API's keys (docs/api.md, "Keys")."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from sora_relay.domain.events import iso_utc
from sora_relay_tools.cli.session import Session, shown, user_command
from sora_relay_tools.client.errors import RelayError
from sora_relay_tools.client.keys import create_key


@click.group()
def keys() -> None:
    """The HTTP API's keys: each call carries one, and sees only its own requests."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--daily-credits",
    type=float,
    default=None,
    help="The credits its requests may be priced at in a UTC day (within the stack's own budget).",
)
@user_command
def create(session: Session, name: str, daily_credits: float | None) -> None:
    """A new key named NAME, printed once: only its hash is stored."""
    secret = create_key(session.relay.keys, name, daily_credits)
    session.say(f"{secret}\n(key {name}: shown once, keep it secret)", name=name, key=secret)


@keys.command("list")
@user_command
def list_keys(session: Session) -> None:
    """Every key's name, when it was made, and whether it is revoked (never the key itself)."""
    listed = [
        {"name": key.name, "created_at": iso_utc(key.created_at)}
        | ({"daily_credits": key.daily_credits} if key.daily_credits is not None else {})
        | ({"revoked_at": iso_utc(key.revoked_at)} if key.revoked_at else {})
        for key in session.relay.keys.all()
    ]
    if session.as_json:
        session.emit(listed)
        return
    for key in listed:
        daily = f"  {key['daily_credits']:g} credits a day" if "daily_credits" in key else ""
        revoked = f"  revoked {key['revoked_at']}" if "revoked_at" in key else ""
        session.say(shown(f"{key['name']}  created {key['created_at']}{daily}{revoked}"))


@keys.command("revoke")
@click.argument("name")
@user_command
def revoke(session: Session, name: str) -> None:
    """Revoke the key NAME: its calls are refused (401) from now on."""
    if not session.relay.keys.revoke(name, datetime.now(UTC)):
        raise RelayError(f"there is no key named {name!r}")
    session.say(f"key {name} revoked", name=name, revoked=True)
