"""`python -m sora_relay_tools.faults [--every N] [--template PATH]`: run the fault suites, print the table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sora_relay_tools.faults.suites import run_suites, table


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the fault suites and print one table.")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--every", type=int, default=1, help="crash at every N-th outbound call (1: all)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows, failures = run_suites(args.template, every=args.every)
    print(table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s")
    for failure in failures:
        print(f"crash at {failure.crash_at} ({failure.crashed_call}): {failure.problems}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
