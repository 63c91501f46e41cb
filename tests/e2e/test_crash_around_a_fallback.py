"""Crash at the outbound calls around a fallback (a Veo request its audio filter refuses, made by
Kling): it ends once, paid once per model, its first attempt the generation that failed."""

import pytest

from sora_relay_tools.faults.crash import RunResult
from sora_relay_tools.faults.suites import crash_points, quiet


@pytest.fixture(scope="module")
def fallback_crash_runs(crash_drill) -> list[RunResult]:
    # Its first calls are the first run's (a request read, submitted, checked): every sixth here
    # (`make reliability`: each one).
    points, baseline = crash_points(crash_drill, every=6, fallback=True)
    assert baseline.clean, baseline.problems
    with quiet():
        return [crash_drill.run(crash_at=point, fallback=True) for point in points]


def test_every_crash_around_a_fallback_ends_it_once_paid_once_per_model_after_the_first_failed(
    fallback_crash_runs,
) -> None:
    assert [(r.crash_at, r.crashed_call, r.problems) for r in fallback_crash_runs if not r.clean] == []
    # Right after the Veo submission and after the Kling one.
    assert len([r for r in fallback_crash_runs if r.in_paid_window]) == 2
