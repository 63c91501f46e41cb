"""Provider faults and lost answers: every request ends once, paid once, with a whole video. (Crashes
at each call: test_crash_at_every_call.py and test_crash_around_a_fallback.py.)"""

import pytest

from sora_relay_tools.faults.suites import LOSSY_REQUESTS, PROVIDER_FAULTS, quiet, run_lossy


@pytest.mark.parametrize("fault", sorted(PROVIDER_FAULTS))
def test_provider_fault_changes_no_outcome(crash_drill, fault: str) -> None:
    with quiet():
        result = crash_drill.run(provider_faults=PROVIDER_FAULTS[fault])
    assert result.problems == []
    assert result.duplicate_submissions == 0


def test_lost_answers_and_crashes_after_accepting_pay_once_per_request_with_its_own_inputs(crash_drill) -> None:
    before = len(crash_drill.simulator.submissions())
    with quiet():
        row, result = run_lossy(crash_drill, seed=7)
    assert result.problems == []
    assert row.faults >= 10  # of about 2 x 35 % of 23 submissions, some answers lost and some invocations killed
    # One generation per request, across the families: cut and long prompts, twins with other
    # reference images, an extension; and one more for the request that falls back to Kling.
    assert len(crash_drill.simulator.submissions()) - before - 1 == result.requests == LOSSY_REQUESTS + 4
    assert (result.wrong_inputs, result.corrupt_objects) == (0, 0)


def test_lost_answers_against_records_in_the_providers_words_and_an_oldest_first_history_pay_once(crash_drill) -> None:
    before = len(crash_drill.simulator.submissions())
    with quiet():
        row, result = run_lossy(crash_drill, seed=7, in_its_own_words=True)
    assert result.problems == []
    assert row.faults >= 10
    assert result.duplicate_submissions == 0
    # One generation per request, and one more for the request that falls back to Kling.
    assert len(crash_drill.simulator.submissions()) - before - 1 == result.requests == LOSSY_REQUESTS + 4
    assert result.wrong_inputs == 0
