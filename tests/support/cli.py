"""The `sora-relay` command run as people run it: a process of its own, pointed at the local stack."""

import os
import subprocess  # nosec B404
import sys

from sora_relay_tools.local.stack import STACK_NAME


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "sora_relay_tools.cli", *arguments]


def environment(columns: str | None = "200") -> dict[str, str]:
    """`columns` None: as a pipe has it, with no COLUMNS (rich then assumes 80)."""
    variables = {**os.environ, "SORA_RELAY_STACK": STACK_NAME}
    variables.pop("COLUMNS", None)
    return variables if columns is None else {**variables, "COLUMNS": columns}


def cli(*arguments: str, timeout: float = 120, columns: str | None = "200") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # nosec B603  # our own interpreter, fixed arguments
        command(*arguments), capture_output=True, text=True, env=environment(columns), timeout=timeout, check=False
    )
