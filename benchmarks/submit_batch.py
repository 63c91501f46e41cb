"""Benchmark 1: a batch of 10 requests through the submit handler, concurrent against sequential.

    .venv/bin/python benchmarks/submit_batch.py [--latency 0.3]

Both runs in this process, same handler, same moto, same simulator (with a set provider
latency); only SUBMIT_CONCURRENCY differs (1 is the sequential baseline).
"""

from __future__ import annotations

import argparse
import json

from common import local_stack, print_table, set_environment, timed

from sora_relay_tools.local.stack import Provider
from sora_relay_tools.simulator import GeminiGenSimulator

BATCH = 10


def run_batch(stack, tag: str) -> float:  # type: ignore[no-untyped-def]
    for number in range(BATCH):
        stack.send(json.dumps({"request_id": f"{tag}-{number}", "prompt": f"{tag}: a kite {number}"}))
    trigger = next(t for t in stack.deployed.queue_triggers if t.function == "SubmitFunction")
    messages: list[dict] = []
    while len(messages) < BATCH:
        messages += stack.driver.receive(trigger)
    seconds = timed(lambda: stack.driver.deliver(trigger, messages))
    # A start that lost a race for a place went through the line, which may have started another
    # waiting request by sending its message again (as SQS would deliver it): delivered here,
    # untimed, so that every request of the batch is submitted.
    while resent := stack.driver.receive(trigger):
        stack.driver.deliver(trigger, resent)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    with (
        GeminiGenSimulator(latency=args.latency) as simulator,
        local_stack(Provider(simulator.base_url, simulator.api_key)) as stack,
    ):
        # The submitter is measured, not the line: the account's places (five by default) are
        # no limit here (the three batches' generations are never polled to their end).
        stack.driver.configure({"MAX_ACTIVE_GENERATIONS": str(3 * BATCH)})
        set_environment(SUBMIT_CONCURRENCY="10")
        run_batch(stack, "warm-up")
        concurrent = run_batch(stack, "concurrent")
        set_environment(SUBMIT_CONCURRENCY="1")
        sequential = run_batch(stack, "sequential")
        submitted = len(simulator.submissions())
    assert submitted == 3 * BATCH, submitted
    print_table(
        f"1. submit: a batch of {BATCH} at {args.latency * 1000:.0f} ms provider latency",
        ("run", "wall (s)", "provider round trips", "speed-up"),
        [
            ("sequential (SUBMIT_CONCURRENCY=1)", sequential, sequential / args.latency, 1.0),
            ("concurrent (SUBMIT_CONCURRENCY=10)", concurrent, concurrent / args.latency, sequential / concurrent),
        ],
    )


if __name__ == "__main__":
    main()
