"""The `sora-relay` command run as people run it: a process of its own, pointed at the local stack."""

import os
import subprocess  # nosec B404
import sys

from sora_relay_tools.local.stack import STACK_NAME


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "sora_relay_tools.cli", *arguments]


def environment() -> dict[str, str]:
    return {**os.environ, "SORA_RELAY_STACK": STACK_NAME, "COLUMNS": "200"}


def cli(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # nosec B603  # our own interpreter, fixed arguments
        command(*arguments), capture_output=True, text=True, env=environment(), timeout=timeout, check=False
    )
