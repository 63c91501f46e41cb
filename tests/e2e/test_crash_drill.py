"""Crashes anywhere, at random: 2 % of every AWS and provider call kills its invocation, run a
minute at a time on the local stack, each failed message back when SQS would return it."""

from collections.abc import Iterator

import pytest

from sora_relay_tools.faults.crash import CrashDrill, RunResult
from sora_relay_tools.faults.suites import quiet

from ..support.paths import TEMPLATE


@pytest.fixture(scope="module")
def crashing() -> Iterator[tuple[CrashDrill, RunResult, dict[str, float], dict[str, float]]]:
    """16 requests, 5 places, MaxWaitMinutes 10, one-minute generations, while 2 % of every
    AWS and provider call kills its invocation: minutes from sending, and from submission, to
    each request's final event."""
    with quiet(), CrashDrill(TEMPLATE) as drill:
        driver = drill.stack.driver
        assert driver is not None
        driver.configure({"MAX_ACTIVE_GENERATIONS": "5", "MAX_WAIT_MINUTES": "10"})
        drill.simulator.generation_seconds = 60
        sent_at = drill.clock.now
        result, ended = drill.run_crashing(16, share=0.02, seed=CRASHING_SEED)
        submitted = {}
        for generation in drill.simulator.submissions():
            request_id = "run1-" + generation.fields["prompt"].split(" shot ")[1].split(":")[0]
            submitted.setdefault(request_id, generation.created_at)
        from_sending = {request_id: took.total_seconds() / 60 for request_id, took in ended.items()}
        from_submission = {
            request_id: (sent_at + ended[request_id] - submitted[request_id]).total_seconds() / 60
            for request_id in ended
        }
        yield drill, result, from_sending, from_submission


CRASHING_SEED = 3


def test_under_two_percent_crashes_every_request_ends_once_paid_once_with_its_video(crashing) -> None:
    drill, result, from_sending, _ = crashing
    assert drill.injector.crashes >= 10
    assert result.problems == []
    assert len(from_sending) == 16


def test_under_two_percent_crashes_every_request_ends_within_its_bound_from_its_submission(crashing) -> None:
    *_, from_submission = crashing
    assert max(from_submission.values()) <= 10 + 5  # MaxWaitMinutes, and five
