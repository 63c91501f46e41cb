"""The provider's thumbnail, copied beside the video, best effort."""

import json

import pytest

from sora_relay.domain.ports import MediaNotAllowed
from sora_relay.services.archive import ArchiveOutcome
from sora_relay.services.submit.messages import InboundMessage

URL = "https://cdn.geminigen.ai/v/1.mp4"
THUMBNAIL = "https://cdn.geminigen.ai/v/1.jpg"


def finished(world, **fields: object):
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "ad-1", "prompt": "a fox"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=2, generated_video=[{"video_url": URL}], **fields)]
    world.poller.sweep()
    return world


@pytest.fixture
def with_thumbnail(world):
    return finished(world, thumbnail_url=THUMBNAIL)


def test_thumbnail_is_copied_beside_the_video_and_described_in_its_event(with_thumbnail) -> None:
    assert with_thumbnail.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    [(url, key_stem, _)] = with_thumbnail.archive.thumbnails
    assert (url, key_stem) == (THUMBNAIL, "videos/ad-1.thumbnail")
    [event] = with_thumbnail.publisher.finals
    assert event.thumbnail.key == "videos/ad-1.thumbnail.jpg"
    assert event.thumbnail.content_type == "image/jpeg"
    assert with_thumbnail.metrics.counts["ThumbnailsCopied"] == 1


def test_thumbnail_copy_is_given_a_bounded_time(with_thumbnail) -> None:
    with_thumbnail.archiver.archive_job("ad-1")
    [(_, _, within)] = with_thumbnail.archive.thumbnails
    assert within == with_thumbnail.policy.thumbnail_time.total_seconds()


@pytest.mark.parametrize("failure", [MediaNotAllowed("host not allowed"), TimeoutError("slow"), ValueError("a GIF")])
def test_thumbnail_that_cannot_be_copied_leaves_the_video_event_without_it(with_thumbnail, failure) -> None:
    with_thumbnail.archive.thumbnail_failure = failure
    assert with_thumbnail.archiver.archive_job("ad-1") is ArchiveOutcome.ARCHIVED
    [event] = with_thumbnail.publisher.finals
    assert event.event.value == "video.completed"
    assert event.thumbnail is None
    assert with_thumbnail.metrics.counts["ThumbnailsMissed"] == 1


def test_thumbnail_is_skipped_when_the_invocation_has_too_little_time_left(with_thumbnail) -> None:
    outcome = with_thumbnail.archiver.archive_job("ad-1", seconds_left=lambda: 40.0)
    assert outcome is ArchiveOutcome.ARCHIVED
    assert with_thumbnail.archive.thumbnails == []
    assert with_thumbnail.publisher.finals[0].thumbnail is None


def test_video_without_a_thumbnail_copies_none(world) -> None:
    finished(world)
    world.archiver.archive_job("ad-1")
    assert world.archive.thumbnails == []
    assert world.publisher.finals[0].thumbnail is None
    assert world.metrics.counts["ThumbnailsMissed"] == 0


def test_thumbnail_is_copied_before_the_video_so_nothing_stands_between_a_copy_and_its_record(with_thumbnail) -> None:
    order: list[str] = []
    with_thumbnail.archive.meanwhile = lambda: order.append("video copied")
    copy_thumbnail = with_thumbnail.archive.copy_thumbnail

    def thumbnail_then(*args: object) -> object:
        order.append("thumbnail copied")
        return copy_thumbnail(*args)

    with_thumbnail.archive.copy_thumbnail = thumbnail_then
    with_thumbnail.archiver.archive_job("ad-1")
    assert order == ["thumbnail copied", "video copied"]
