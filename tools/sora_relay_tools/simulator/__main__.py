"""`python -m sora_relay_tools.simulator`: the GeminiGen double on its own, until interrupted.

Point a stack's GeminiGenBaseUrl at it (for instance a local one), or a benchmark that
must not share its interpreter with the provider's work."""

from __future__ import annotations

import argparse
import contextlib
import threading

from sora_relay_tools.simulator import GeminiGenSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="The GeminiGen Sora API double.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sim-api-key")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each API call takes")
    parser.add_argument("--generation-seconds", type=float, default=60.0)
    args = parser.parse_args()
    simulator = GeminiGenSimulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency=args.latency,
        generation_seconds=args.generation_seconds,
    )
    with simulator, contextlib.suppress(KeyboardInterrupt):
        print(f"GeminiGen simulator at {simulator.base_url} (x-api-key: {args.api_key})", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
