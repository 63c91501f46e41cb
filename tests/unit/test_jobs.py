"""A job's transitions: each is the next version, and says what it changes."""

from datetime import UTC, datetime, timedelta

import pytest

from sora_relay.domain.events import ProviderSummary
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.request import VideoRequest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
GENERATION = ProviderSummary(uuid="a1b2", estimated_credit=30)


def received() -> Job:
    request = VideoRequest.model_validate({"prompt": "a fox in the snow"})
    return Job("ad-1", JobState.RECEIVED, "f" * 64, NOW, NOW, request=request)


def test_each_transition_is_the_next_version_with_a_new_revision() -> None:
    job = received()
    attempting = job.attempting(LATER, reserved=30)
    assert (attempting.version, attempting.updated_at) == (job.version + 1, LATER)
    assert attempting.revision != job.revision
    assert (attempting.attempt_started_at, attempting.attempt_reserved) == (LATER, 30)


def test_submitted_job_dates_its_submission_from_the_attempt() -> None:
    attempting = received().attempting(NOW, reserved=30)
    submitted = attempting.submitted(LATER, GENERATION, progress=0, media_type=None, check_at=LATER)
    assert submitted.state is JobState.SUBMITTED
    assert (submitted.submitted_at, submitted.attempt_started_at, submitted.attempt_reserved) == (NOW, None, 0)
    assert submitted.generation == GENERATION


def test_attempt_has_a_name_of_its_own_that_its_generation_keeps() -> None:
    attempting = received().attempting(NOW, reserved=30)
    again = received().attempting(LATER, reserved=30)
    assert attempting.attempt_id != again.attempt_id
    submitted = attempting.submitted(LATER, GENERATION, progress=0, media_type=None, check_at=LATER)
    assert submitted.attempt_id == attempting.attempt_id


def test_attempt_not_taken_is_cleared_and_keeps_its_claim_and_place() -> None:
    started = received().started(NOW, LATER, check_at=LATER).attempting(NOW, reserved=30)
    cleared = started.not_taken(LATER)
    assert (cleared.attempt_started_at, cleared.attempt_id, cleared.attempt_reserved) == (None, None, 0)
    assert (cleared.lease_until, cleared.placed_at) == (started.lease_until, started.placed_at)


def test_running_job_keeps_when_its_progress_last_moved_until_it_moves() -> None:
    submitted = received().submitted(NOW, GENERATION, progress=10, media_type=None, check_at=NOW)
    still = submitted.running(LATER, GENERATION, 10, check_at=LATER)
    moved = still.running(LATER + timedelta(minutes=1), GENERATION, 40, check_at=LATER)
    assert (still.progress_at, still.status_checks) == (NOW, 1)
    assert (moved.progress_at, moved.status_checks) == (LATER + timedelta(minutes=1), 2)


def test_job_back_in_line_gives_back_its_place_claim_and_attempt() -> None:
    started = received().started(NOW, LATER, check_at=LATER).attempting(NOW, reserved=30)
    waiting = started.joined_line(LATER, check_at=LATER + timedelta(hours=48))
    assert waiting.waiting
    assert (waiting.placed_at, waiting.lease_until, waiting.attempt_started_at, waiting.attempt_reserved) == (
        None,
        None,
        None,
        0,
    )
    assert not waiting.holds_place


def test_what_a_stage_always_has_is_refused_clearly_outside_it() -> None:
    invalid = Job("ad-2", JobState.FAILED, "f" * 64, NOW, NOW)
    with pytest.raises(ValueError, match="ad-2 holds no valid request"):
        _ = invalid.claimed_request
    with pytest.raises(ValueError, match="ad-2 has no attempt open"):
        _ = invalid.attempt_began
    with pytest.raises(ValueError, match="ad-2 was not taken by the provider"):
        _ = invalid.generation
