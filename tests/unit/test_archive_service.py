import json
from dataclasses import replace
from datetime import timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.ports import MediaGone, MediaNotAllowed
from sora_relay.domain.provider import ProviderUnavailable
from sora_relay.services.archive import ArchiveFailed, ArchiveOutcome
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import InboundMessage

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
    [event] = completed.publisher.finals
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
    assert len(completed.publisher.finals) == 1


def test_failed_publish_is_retried_without_copying_again(completed) -> None:
    completed.publisher.failures = [ConnectionError("SNS down")]
    with pytest.raises(ConnectionError):
        completed.archiver.archive_job("ad-1")
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.PUBLISHED
    assert len(completed.archive.copies) == 1
    assert [e.event_id for e in completed.publisher.finals] == ["ad-1:video.completed"]


def test_address_that_refuses_every_try_ends_as_expired_within_minutes(completed) -> None:
    completed.archive.failure = MediaGone("HTTP 403")
    started = completed.clock.now
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.EXPIRED
    [event] = completed.publisher.finals
    assert event.error.code == "expired"
    assert "refused the download 3 times, and the provider's record offers no other: HTTP 403" in event.error.message
    assert completed.clock.now - started < timedelta(minutes=1)
    assert completed.metrics.counts["AddressesRefused"] == 1


def test_refused_address_is_replaced_by_a_fresh_one_from_the_status(completed) -> None:
    fresh = "https://cdn.geminigen.ai/v/1.mp4?signature=new"
    completed.archive.failures = [MediaGone("HTTP 410")]
    completed.provider.records = [
        completed.record(status=2, generated_video=[{"video_url": URL}]),
        completed.record(status=2, generated_video=[{"video_url": fresh}]),
    ]
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert [url for url, _ in completed.archive.copies] == [URL, fresh]


def test_a_record_that_cannot_be_read_keeps_the_latest_address_read(completed) -> None:
    fresh = "https://cdn.geminigen.ai/v/1.mp4?signature=new"
    completed.archive.failures = [MediaGone("HTTP 410"), MediaGone("HTTP 410")]
    completed.provider.records = [
        completed.record(status=2, generated_video=[{"video_url": URL}]),
        completed.record(status=2, generated_video=[{"video_url": fresh}]),
        ProviderUnavailable("status 503"),
    ]
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert [url for url, _ in completed.archive.copies] == [URL, fresh, fresh]


def test_the_address_is_read_from_the_record_right_before_the_download(completed) -> None:
    fresh = "https://cdn.geminigen.ai/v/1.mp4?signature=now"
    completed.provider.records = [completed.record(status=2, generated_video=[{"video_url": fresh}])]
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert [url for url, _ in completed.archive.copies] == [fresh]


def test_an_address_refused_while_the_record_still_offers_one_is_tried_again_later_not_expired(completed) -> None:
    completed.archive.failure = MediaGone("HTTP 403")
    completed.provider.records = [completed.record(status=2, generated_video=[{"video_url": URL}])] * 5
    with pytest.raises(ArchiveFailed):
        completed.archiver.archive_job("ad-1")
    assert completed.publisher.finals == []
    assert completed.store.get("ad-1").state is JobState.COMPLETED


def test_address_on_a_host_not_allowed_ends_as_expired_without_a_download(completed) -> None:
    completed.archive.failure = MediaNotAllowed("host evil.example is not in the allowed media hosts")
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.EXPIRED
    [event] = completed.publisher.finals
    assert "evil.example" in event.error.message


def test_transient_copy_failure_is_tried_again_in_the_same_invocation(completed) -> None:
    completed.archive.failures = [OSError("connection reset")]
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert len(completed.archive.copies) == 2


def test_copy_failing_every_try_comes_back_within_a_minute_not_the_visibility_timeout(completed) -> None:
    completed.archive.failure = OSError("connection reset")
    with pytest.raises(ArchiveFailed) as failed:
        completed.archiver.archive_job("ad-1", receive_count=1)
    assert failed.value.delay <= timedelta(minutes=1)
    job = completed.store.get("ad-1")
    assert job.state is JobState.COMPLETED
    assert job.lease_until is None  # the next delivery may copy at once


def test_no_further_try_starts_without_time_for_it(completed) -> None:
    completed.archive.failure = OSError("connection reset")
    with pytest.raises(ArchiveFailed):
        completed.archiver.archive_job("ad-1", seconds_left=lambda: 30)
    assert len(completed.archive.copies) == 1


def test_copy_failing_until_past_expired_at_ends_as_expired(completed) -> None:
    completed.clock.now = completed.store.get("ad-1").expired_at - timedelta(seconds=10)
    completed.archive.failure = OSError("connection reset")
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.EXPIRED
    [event] = completed.publisher.finals
    assert event.error.code == "expired"
    assert event.error.message.endswith("connection reset")


def test_copy_in_flight_is_left_alone_by_the_watchdog_and_announced_once(completed) -> None:
    """A 75 s copy twenty minutes before expired_at: the watchdog, due every minute so close to
    expired_at, must not send the hand-off again nor move the job under the copy."""
    job = completed.store.get("ad-1")
    expired_at = completed.clock.now + timedelta(minutes=20)
    provider = job.provider.model_copy(update={"expired_at": expired_at.isoformat()})
    completed.store.jobs["ad-1"] = replace(job, provider=provider, next_check_at=completed.clock.now)

    def slow_copy() -> None:
        for _ in range(5):
            completed.clock.advance(timedelta(seconds=15))
            completed.poller.sweep()

    completed.archive.meanwhile = slow_copy
    assert completed.archiver.archive_job("ad-1", seconds_left=lambda: 900) is ArchiveOutcome.ARCHIVED
    assert [e.event_id for e in completed.publisher.finals] == ["ad-1:video.completed"]
    assert completed.archive_queue.sent == ["ad-1"]
    assert completed.store.get("ad-1").state is JobState.ARCHIVED


def test_finished_copy_is_recorded_even_when_the_job_moved_under_it(completed) -> None:
    def watchdog_moves_it() -> None:
        job = completed.store.get("ad-1")
        completed.store.save(job.leased(completed.clock.now, None, check_at=job.next_check_at))

    completed.archive.meanwhile = watchdog_moves_it
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert [e.event_id for e in completed.publisher.finals] == ["ad-1:video.completed"]
    assert completed.store.get("ad-1").state is JobState.ARCHIVED


def test_second_handoff_during_a_copy_copies_nothing(completed) -> None:
    outcomes = []
    completed.archive.meanwhile = lambda: outcomes.append(completed.archiver.archive_job("ad-1"))
    completed.archiver.archive_job("ad-1", seconds_left=lambda: 900)
    assert outcomes == [ArchiveOutcome.COPYING]
    assert len(completed.archive.copies) == 1


def test_copy_lease_of_an_invocation_that_died_runs_out_within_minutes_whatever_its_timeout(completed) -> None:
    completed.archive.failure = SystemExit("the container died")
    with pytest.raises(SystemExit):
        completed.archiver.archive_job("ad-1", seconds_left=lambda: 900)
    completed.archive.failure = None
    assert completed.store.get("ad-1").next_check_at == completed.clock.now + completed.policy.copy_lease
    completed.clock.advance(completed.policy.copy_lease)
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED


def test_copy_that_runs_long_keeps_its_lease_and_its_record_lands_on_the_renewed_version(completed) -> None:
    versions: list[int] = []

    def slow_copy() -> None:
        for _ in range(5):
            completed.clock.advance(completed.policy.copy_lease / 2)
            completed.archive.keep_alive()
            versions.append(completed.store.get("ad-1").version)

    completed.archive.meanwhile = slow_copy
    assert completed.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    assert versions == sorted(set(versions))  # renewed at each half lease
    assert completed.publisher.finals[0].event.value == "video.completed"


def test_video_without_expired_at_not_copied_within_the_window_ends(completed) -> None:
    job = completed.store.get("ad-1")
    provider = job.provider.model_copy(update={"expired_at": None})
    completed.store.jobs["ad-1"] = replace(job, provider=provider)
    completed.clock.advance(completed.policy.archive_window)
    assert completed.poller.sweep().outcomes == {Outcome.FAILED: 1}
    [event] = completed.publisher.finals
    assert event.error.code == "timed_out"
    assert "not copied within 24 hours" in event.error.message


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


@pytest.mark.parametrize(("stated", "asked"), [("video", None), ("video/mp4", "video/mp4"), (None, None)])
def test_video_is_stored_as_its_stated_type_only_when_that_is_a_full_media_type(world, stated, asked) -> None:
    body = json.dumps({"request_id": "ad-1", "prompt": "a fox"})
    world.submitter.handle(InboundMessage("m-1", body))
    world.clock.advance(world.policy.poll_interval)
    finished = {"status": 2, "generated_video": [{"video_url": URL}], "media_type": stated}
    world.provider.records = [world.record(**finished)]
    world.store.jobs["ad-1"] = replace(world.store.get("ad-1"), media_type=None)  # as the submit answer left it
    world.poller.sweep()
    world.archiver.archive_job("ad-1")
    assert world.archive.content_types == [asked]
    [event] = world.publisher.finals
    assert event.video.content_type == (asked or "video/mp4")


def test_copy_longer_than_ten_minutes_is_made_once(completed) -> None:
    """The archive function may run 15 minutes: its copy's lease, renewed as the bytes come,
    covers all of them, so the poll's watchdog, running meanwhile, never hands the video off
    for a second copy."""
    watchdog_runs = []

    def slow_copy() -> None:
        for _ in range(14):
            completed.clock.advance(timedelta(minutes=1))
            completed.archive.keep_alive()  # its bytes still coming
            watchdog_runs.append(completed.poller.sweep().outcomes)

    completed.archive.meanwhile = slow_copy
    sent_before = list(completed.archive_queue.sent)
    assert completed.archiver.archive_job("ad-1", seconds_left=lambda: 900.0) is ArchiveOutcome.ARCHIVED
    assert len(completed.archive.copies) == 1
    assert completed.archive_queue.sent == sent_before  # handed off no second time
