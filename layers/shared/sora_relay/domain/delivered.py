"""What was delivered, against what was asked: a provider has silently replaced an aspect ratio it
does not serve (4:5 became 16:9), so the archived file's own duration, width and height are read
(`adapters/media/mp4.py`) and set beside the request (docs/contract.md, "The events")."""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import Delivered
from sora_relay.domain.request import VideoRequest

# The words for an aspect ratio that are not `w:h` (Sora's and Grok's).
_NAMED_RATIOS = {"landscape": (16, 9), "portrait": (9, 16), "square": (1, 1)}
# A delivered ratio within this share of the asked one is the asked one (encoders round sizes).
_RATIO_TOLERANCE = 0.03
# A duration within this many seconds, or this share, of the asked one is the asked one.
_SECONDS_TOLERANCE = 1.0
_DURATION_SHARE = 0.1


@dataclass(frozen=True)
class VideoFacts:
    """What an MP4's `moov` says of it (each None when it does not say)."""

    duration_seconds: float | None
    width: int | None
    height: int | None


def delivered(request: VideoRequest | None, facts: VideoFacts) -> Delivered:
    """The facts, and whether they match `request` (the differences when they do not)."""
    differences = _differences(request, facts) if request is not None else []
    return Delivered(
        duration_seconds=facts.duration_seconds,
        width=facts.width,
        height=facts.height,
        matches_request=not differences,
        differences=differences or None,
    )


def _differences(request: VideoRequest, facts: VideoFacts) -> list[str]:
    found = []
    asked = _ratio(request.aspect_ratio)
    if asked is not None and facts.width and facts.height:
        wanted, got = asked[0] / asked[1], facts.width / facts.height
        if abs(got - wanted) > _RATIO_TOLERANCE * wanted:
            found.append(f"aspect_ratio: asked {request.aspect_ratio}, delivered {facts.width}x{facts.height}")
    if request.duration is not None and facts.duration_seconds is not None:
        slack = max(_SECONDS_TOLERANCE, _DURATION_SHARE * request.duration)
        if abs(facts.duration_seconds - request.duration) > slack:
            found.append(f"duration: asked {request.duration} s, delivered {facts.duration_seconds:g} s")
    return found


def _ratio(aspect_ratio: str | None) -> tuple[int, int] | None:
    if aspect_ratio is None:
        return None
    if aspect_ratio in _NAMED_RATIOS:
        return _NAMED_RATIOS[aspect_ratio]
    width, _, height = aspect_ratio.partition(":")
    if width.isdigit() and height.isdigit() and int(width) and int(height):
        return int(width), int(height)
    return None  # words the stack does not know: nothing to compare
