"""Crash anywhere and provider faults: every request ends once, paid once, with a whole video."""

from collections.abc import Iterator

import pytest

from sora_relay_tools.faults.crash import CrashDrill, RunResult
from sora_relay_tools.faults.suites import LOSSY_REQUESTS, PROVIDER_FAULTS, crash_points, quiet, run_lossy

from ..support.paths import TEMPLATE

# `make test` crashes at every third outbound call (and at each one in the paid window);
# `make reliability` crashes at every one.
EVERY = 3


@pytest.fixture(scope="module")
def drill() -> Iterator[CrashDrill]:
    with quiet(), CrashDrill(TEMPLATE) as drill:
        yield drill


@pytest.fixture(scope="module")
def crash_runs(drill) -> list[RunResult]:
    points, baseline = crash_points(drill, every=EVERY)
    assert baseline.clean, baseline.problems
    with quiet():
        return [drill.run(crash_at=point) for point in points]


def test_every_crash_leaves_each_request_with_exactly_one_final_event(crash_runs) -> None:
    assert [(r.crash_at, r.crashed_call, r.problems) for r in crash_runs if not r.clean] == []


@pytest.fixture(scope="module")
def fallback_crash_runs(drill) -> list[RunResult]:
    # Its first calls are the first run's (a request read, submitted, checked): every sixth here.
    points, baseline = crash_points(drill, every=2 * EVERY, fallback=True)
    assert baseline.clean, baseline.problems
    with quiet():
        return [drill.run(crash_at=point, fallback=True) for point in points]


def test_every_crash_around_a_fallback_ends_it_once_paid_once_per_model_after_the_first_failed(
    fallback_crash_runs,
) -> None:
    assert [(r.crash_at, r.crashed_call, r.problems) for r in fallback_crash_runs if not r.clean] == []
    # Right after the Veo submission and after the Kling one.
    assert len([r for r in fallback_crash_runs if r.in_paid_window]) == 2


def test_crashes_reach_every_kind_of_call(crash_runs) -> None:
    calls = {r.crashed_call.split(" ")[0] for r in crash_runs if r.crashed_call}
    assert {"dynamodb.PutItem", "http.POST", "http.GET", "sns.Publish", "sqs.SendMessage", "s3.PutObject"} <= calls


def test_crashes_in_the_paid_window_pay_once(crash_runs) -> None:
    in_window = [r for r in crash_runs if r.in_paid_window]
    assert len(in_window) == 2  # right after each of the two submissions
    assert [r.duplicate_submissions for r in crash_runs] == [0] * len(crash_runs)


@pytest.mark.parametrize("fault", sorted(PROVIDER_FAULTS))
def test_provider_fault_changes_no_outcome(drill, fault: str) -> None:
    with quiet():
        result = drill.run(provider_faults=PROVIDER_FAULTS[fault])
    assert result.problems == []
    assert result.duplicate_submissions == 0


def test_lost_answers_and_crashes_after_accepting_pay_once_per_request_with_its_own_inputs(drill) -> None:
    before = len(drill.simulator.submissions())
    with quiet():
        row, result = run_lossy(drill, seed=7)
    assert result.problems == []
    assert row.faults >= 10  # of about 2 x 35 % of 23 submissions, some answers lost and some invocations killed
    # One generation per request, across the families: cut and long prompts, twins with other
    # reference images, an extension; and one more for the request that falls back to Kling.
    assert len(drill.simulator.submissions()) - before - 1 == result.requests == LOSSY_REQUESTS + 4
    assert (result.wrong_inputs, result.corrupt_objects) == (0, 0)


def test_lost_answers_against_records_in_the_providers_words_and_an_oldest_first_history_pay_once(drill) -> None:
    before = len(drill.simulator.submissions())
    with quiet():
        row, result = run_lossy(drill, seed=7, in_its_own_words=True)
    assert result.problems == []
    assert row.faults >= 10
    assert result.duplicate_submissions == 0
    # One generation per request, and one more for the request that falls back to Kling.
    assert len(drill.simulator.submissions()) - before - 1 == result.requests == LOSSY_REQUESTS + 4
    assert result.wrong_inputs == 0
