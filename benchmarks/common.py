"""What the benchmarks share: a quiet local stack (moto in process) and a table printer."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from sora_relay import wiring
from sora_relay_tools.faults.suites import quiet
from sora_relay_tools.local.stack import LocalStack, Provider

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@contextlib.contextmanager
def local_stack(provider: Provider, *, server_process: bool = False) -> Iterator[LocalStack]:
    """The stack with the functions stepped by the benchmark; moto in this process, or (for
    figures that moto's own work would distort) its server in a process of its own."""
    stack = LocalStack(TEMPLATE, provider, in_process=not server_process, server_process=server_process, drive=False)
    with quiet(), stack:
        yield stack


def set_environment(**variables: str) -> None:
    """Change the functions' settings between two measured runs (services are rebuilt)."""
    os.environ.update(variables)
    wiring.rebuild()


def timed(action: object) -> float:
    assert callable(action)
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(v) for v in header], *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for number, row in enumerate(cells):
        print(
            "| "
            + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            + " |"
        )
        if number == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
