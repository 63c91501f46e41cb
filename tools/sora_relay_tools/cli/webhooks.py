"""`webhooks`: the secret the stack signs its webhooks with (docs/api.md, "Webhooks")."""

from __future__ import annotations

import click

from sora_relay.domain.webhooks import shown_secret
from sora_relay_tools.cli.session import Session, user_command
from sora_relay_tools.client.errors import StackNotFound


@click.group()
def webhooks() -> None:
    """Webhooks: each event of a request that names a callback_url, POSTed to it, signed."""


@webhooks.command("secret")
@user_command
def secret(session: Session) -> None:
    """The signing secret (whsec_...), as a Standard Webhooks library takes it to verify deliveries."""
    arn = session.relay.resources.outputs.get("WebhookSecretArn")
    if not arn:
        raise StackNotFound("the stack has no output WebhookSecretArn: it predates webhooks")
    shown = shown_secret(session.relay.secret(arn).encode())
    session.say(shown, secret=shown)
