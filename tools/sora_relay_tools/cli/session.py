"""What every command shares: exit codes, the consoles, safe printing, and the --stack/--json
session with its errors turned into exit codes."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape

from sora_relay_tools.client import (
    CannotCancel,
    JobNotFound,
    NotArchived,
    Relay,
    RelayError,
    StackNotFound,
    WaitTimedOut,
)

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
# Subscription filters can use the event's message attributes (docs/contract.md, "The events").
FILTER_ATTRIBUTES = ("event", "request_id", "model", "family")

# Piped, rich would assume 80 columns and cut ids, URIs and digests with "…" or fold them: then
# lines are as long as what they hold (a terminal's own width still applies when there is one).
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
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


def user_command(function: Command) -> Command:
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
