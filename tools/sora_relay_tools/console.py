"""The `sora-relay` console script: the command, or what to install for it."""

from __future__ import annotations

import sys

# The command's own libraries come with the `cli` extra: the functions never need them.
_CLI_LIBRARIES = {"click", "rich"}


def main() -> None:
    try:
        from sora_relay_tools.cli import main as command
    except ModuleNotFoundError as error:
        if error.name not in _CLI_LIBRARIES:
            raise
        sys.stderr.write("The sora-relay command needs its extras: pip install 'sora-relay[cli]'\n")
        sys.exit(2)
    command()
