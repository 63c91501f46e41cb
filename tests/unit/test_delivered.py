"""What was delivered: the MP4's own duration and frame, read as it streams past wherever its
`moov` lies, and set beside what was asked (docs/contract.md, "The events")."""

import struct

import pytest

from sora_relay.adapters.media.mp4 import MAX_MOOV_BYTES, Mp4Probe
from sora_relay.domain.delivered import VideoFacts, delivered
from sora_relay.domain.request import VideoRequest
from sora_relay_tools.simulator.media import frame_size, made_video


def _probe(data: bytes, step: int) -> VideoFacts | None:
    probe = Mp4Probe()
    for at in range(0, len(data), step):
        probe.feed(data[at : at + step])
    return probe.facts()


@pytest.mark.parametrize("moov_last", [False, True])
@pytest.mark.parametrize("step", [1, 7, 1024 * 1024])
def test_the_files_own_duration_and_frame_are_read_wherever_its_moov_lies(moov_last: bool, step: int) -> None:
    video = made_video(1080, 1920, 8, moov_last=moov_last)
    assert _probe(video, step) == VideoFacts(duration_seconds=8.0, width=1080, height=1920)


def test_a_file_that_is_not_an_mp4_says_nothing() -> None:
    assert _probe(b"\x00\x01garbage" * 1000, 4096) is None
    assert _probe(bytes(range(256)) * 100, 4096) is None


def test_a_moov_too_large_to_be_a_videos_is_not_read() -> None:
    header = struct.pack(">I4s", MAX_MOOV_BYTES + 16, b"moov")
    assert _probe(header + b"\x00" * 64, 4096) is None


def test_media_running_to_the_files_end_before_any_moov_says_nothing() -> None:
    assert _probe(struct.pack(">I4s", 0, b"mdat") + b"\x00" * 64, 16) is None


def test_the_simulators_frames_follow_the_settings() -> None:
    assert frame_size({"aspect_ratio": "16:9", "resolution": "720p"}) == (1280, 720)
    assert frame_size({"aspect_ratio": "portrait", "resolution": "small"}) == (720, 1280)
    assert frame_size({"aspect_ratio": "1:1", "mode": "professional"}) == (1080, 1080)


def _request(**fields: object) -> VideoRequest:
    return VideoRequest.model_validate({"prompt": "a fox", "model": "veo-3.1", "family": "veo", **fields})


def test_a_video_as_asked_matches_its_request() -> None:
    found = delivered(_request(aspect_ratio="16:9", duration=8), VideoFacts(8.04, 1280, 720))
    assert (found.matches_request, found.differences) == (True, None)


def test_an_aspect_ratio_replaced_by_the_provider_is_flagged() -> None:
    found = delivered(_request(aspect_ratio="4:5", duration=8), VideoFacts(8.0, 1280, 720))
    assert found.matches_request is False
    assert found.differences == ["aspect_ratio: asked 4:5, delivered 1280x720"]


def test_a_duration_far_from_the_asked_one_is_flagged() -> None:
    found = delivered(_request(aspect_ratio="16:9", duration=8), VideoFacts(4.0, 1280, 720))
    assert found.differences == ["duration: asked 8 s, delivered 4 s"]


def test_named_ratios_are_read_as_their_shapes() -> None:
    request = VideoRequest.model_validate({"prompt": "a fox", "model": "sora-2", "aspect_ratio": "portrait"})
    assert delivered(request, VideoFacts(10.0, 720, 1280)).matches_request
    assert not delivered(request, VideoFacts(10.0, 1280, 720)).matches_request
