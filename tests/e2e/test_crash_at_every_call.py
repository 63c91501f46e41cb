"""Crash at every outbound call of a run (every third here; `make reliability`: each one): every
request ends once, paid once, with a whole video."""

import pytest

from sora_relay_tools.faults.crash import RunResult
from sora_relay_tools.faults.suites import crash_points, quiet

# `make test` crashes at every third outbound call (and at each one in the paid window);
# `make reliability` crashes at every one.
EVERY = 3


@pytest.fixture(scope="module")
def crash_runs(crash_drill) -> list[RunResult]:
    points, baseline = crash_points(crash_drill, every=EVERY)
    assert baseline.clean, baseline.problems
    with quiet():
        return [crash_drill.run(crash_at=point) for point in points]


def test_every_crash_leaves_each_request_with_exactly_one_final_event(crash_runs) -> None:
    assert [(r.crash_at, r.crashed_call, r.problems) for r in crash_runs if not r.clean] == []


def test_crashes_reach_every_kind_of_call(crash_runs) -> None:
    calls = {r.crashed_call.split(" ")[0] for r in crash_runs if r.crashed_call}
    assert {"dynamodb.PutItem", "http.POST", "http.GET", "sns.Publish", "sqs.SendMessage", "s3.PutObject"} <= calls


def test_crashes_in_the_paid_window_pay_once(crash_runs) -> None:
    in_window = [r for r in crash_runs if r.in_paid_window]
    assert len(in_window) == 2  # right after each of the two submissions
    assert [r.duplicate_submissions for r in crash_runs] == [0] * len(crash_runs)
