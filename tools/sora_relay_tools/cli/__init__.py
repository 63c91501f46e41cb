"""The `sora-relay` command: send requests, follow them, fetch videos, watch events.

Results go to standard output (one JSON document, or JSON Lines for streams, with --json);
progress and errors go to standard error. Exit codes are listed in `EXIT_CODES`.
"""

from __future__ import annotations

import click

from sora_relay_tools.cli.dead_letters import dlq
from sora_relay_tools.cli.jobs import cancel, download, list_jobs, status, url
from sora_relay_tools.cli.keys import keys
from sora_relay_tools.cli.local import local
from sora_relay_tools.cli.models import models
from sora_relay_tools.cli.session import EXIT_CODES
from sora_relay_tools.cli.submitting import submit, submit_many
from sora_relay_tools.cli.watching import events
from sora_relay_tools.cli.webhooks import webhooks


@click.group(epilog="Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()))
@click.version_option(package_name="sora-relay")
def main() -> None:
    """sora-relay: a queue in front of GeminiGen's video API. Drop requests, get videos in S3."""


_COMMANDS = (submit, submit_many, status, list_jobs, download, url, cancel, events, dlq, local, models, keys, webhooks)
for command in _COMMANDS:
    main.add_command(command)
