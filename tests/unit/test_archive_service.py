import json
from datetime import timedelta

import pytest

from sora_relay.jobs import JobState
from sora_relay.ports import MediaGone, MediaNotAllowed
from sora_relay.services.archive import ArchiveFailed, ArchiveOutcome
from sora_relay.services.submit import InboundMessage

URL = "https://cdn.geminigen.ai/v/1.mp4"


@pytest.fixture
def completed(world):
    body = json.dumps({"request_id": "ad-1", "prompt": "a fox", "metadata": {"k": "v"}})
    world.submitter.handle(InboundMessage("m-1", body))
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=2, generated_video=[{"video_url": URL}])]
    world.poller.sweep()
    return world


def test_completed_job_is_archived_and_announced(completed) -> None:
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert completed.archive.copies == [(URL, "videos/ad-1.mp4")]
    [event] = completed.publisher.events
    assert event.event == "video.completed"
    assert event.event_id == "ad-1:video.completed"
    assert event.video.key == "videos/ad-1.mp4"
    assert event.error is None
    job = completed.store.get("ad-1")
    assert job.state is JobState.ARCHIVED
    assert job.next_check_at is None


def test_second_handoff_of_an_archived_job_copies_nothing(completed) -> None:
    completed.archiver.archive_job("ad-1")
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.NOTHING_TO_DO
    assert len(completed.archive.copies) == 1
    assert len(completed.publisher.events) == 1


def test_failed_publish_is_retried_without_copying_again(completed) -> None:
    completed.publisher.failures = [ConnectionError("SNS down")]
    with pytest.raises(ConnectionError):
        completed.archiver.archive_job("ad-1")
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.PUBLISHED
    assert len(completed.archive.copies) == 1
    assert [e.event_id for e in completed.publisher.events] == ["ad-1:video.completed"]


def test_address_gone_before_expiry_is_retried(completed) -> None:
    completed.archive.failure = MediaGone("HTTP 404")
    with pytest.raises(ArchiveFailed):
        completed.archiver.archive_job("ad-1")
    assert completed.store.get("ad-1").state is JobState.COMPLETED
    assert completed.publisher.events == []


def test_address_gone_after_expiry_ends_as_expired(completed) -> None:
    completed.archive.failure = MediaGone("HTTP 410")
    completed.clock.advance(timedelta(days=2))
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.EXPIRED
    [event] = completed.publisher.events
    assert event.error.code == "expired"
    assert "HTTP 410" in event.error.message


def test_address_on_a_host_not_allowed_is_not_downloaded_and_retried(completed) -> None:
    completed.archive.failure = MediaNotAllowed("host evil.example is not in the allowed media hosts")
    with pytest.raises(ArchiveFailed, match=r"evil\.example"):
        completed.archiver.archive_job("ad-1")


def test_archive_failure_never_resubmits_the_generation(completed) -> None:
    completed.archive.failure = OSError("connection reset")
    for _ in range(3):
        with pytest.raises(ArchiveFailed):
            completed.archiver.archive_job("ad-1")
    assert len(completed.provider.submitted) == 1


def test_handoff_for_a_job_not_completed_does_nothing(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "ad-2", "prompt": "a fox"})))
    assert world.archiver.archive_job("ad-2") is ArchiveOutcome.NOTHING_TO_DO
    assert world.archive.copies == []
