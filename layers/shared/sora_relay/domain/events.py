"""The events on the completion topic (docs/contract.md, "The events")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sora_relay.domain.request import ExtendTarget, VideoRequest


class EventType(StrEnum):
    SUBMITTED = "video.submitted"
    PROGRESS = "video.progress"
    COMPLETED = "video.completed"
    FAILED = "video.failed"

    @property
    def final(self) -> bool:
        return self in {EventType.COMPLETED, EventType.FAILED}


# An SNS subscription filter policy that lets only the final events through.
FINAL_EVENTS_FILTER_POLICY = {"event": [kind.value for kind in EventType if kind.final]}


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    PROVIDER_REJECTED = "provider_rejected"
    GENERATION_FAILED = "generation_failed"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


class _Frozen(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class RequestSummary(_Frozen):
    """The validated request: its model and family, and the fields of that family it was made
    with (the provider's names); `extend` when it continues an earlier video."""

    prompt: str
    model: str
    family: str
    duration: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    mode: str | None = None
    mode_image: str | None = None
    skip_audio: bool | None = None
    extend: ExtendTarget | None = None
    callback_url: str | None = None

    @classmethod
    def of(cls, request: VideoRequest) -> RequestSummary:
        fields = request.model_dump(mode="json", include=set(cls.model_fields), exclude_none=True)
        return cls.model_validate(fields)


class ProviderSummary(_Frozen):
    uuid: str
    id: int | None = None
    estimated_credit: int | float | None = None
    expired_at: str | None = None
    # What the generation cost, once the provider states it.
    used_credit: int | float | None = None


class VideoObject(_Frozen):
    bucket: str
    key: str
    uri: str
    size: int
    sha256: str
    content_type: str


class ThumbnailObject(_Frozen):
    """A still of the video, copied beside it (best effort: no checksum of the provider's)."""

    bucket: str
    key: str
    uri: str
    size: int
    content_type: str


# An error message carries at most this many bytes (UTF-8): whatever the provider or a hostile
# body says, every event stays far below SNS's 256 KiB (see MAX_EVENT_BYTES).
MAX_ERROR_MESSAGE_BYTES = 2_048
# The largest event the worker can publish stays under this (tests/unit/test_hostile_input.py builds it).
MAX_EVENT_BYTES = 64 * 1024


class EventError(_Frozen):
    code: ErrorCode
    message: str

    @field_validator("message")
    @classmethod
    def _capped(cls, message: str) -> str:
        return cap_text(message, MAX_ERROR_MESSAGE_BYTES)


class Delivered(_Frozen):
    """What the archived file itself shows; `matches_request` false, with the differences, when
    that contradicts what was asked."""

    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    matches_request: bool = True
    differences: list[str] | None = None


class AttemptSummary(_Frozen):
    """One model tried for a request (docs/contract.md, "Fallback"): what became of it, and what
    it cost once the provider stated it."""

    model: str
    provider_uuid: str | None = None
    outcome: Literal["completed", "failed", "skipped"]  # skipped: its breaker was open
    error: EventError | None = None
    used_credit: int | float | None = None


class VideoEvent(_Frozen):
    version: Literal[1] = 1
    event: EventType
    event_id: str
    request_id: str
    occurred_at: str
    request: RequestSummary | None = None
    provider: ProviderSummary | None = None
    progress: int | None = Field(default=None, ge=0, le=100)  # video.progress only
    video: VideoObject | None = None
    thumbnail: ThumbnailObject | None = None
    delivered: Delivered | None = None  # video.completed only
    error: EventError | None = None
    # Every model tried, in order, once there was more than one (final events only).
    attempts: list[AttemptSummary] | None = None
    metadata: dict[str, str] = {}
    key: str | None = None  # the API key's name, for a request made over the HTTP API

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def attributes(self) -> dict[str, str]:
        """SNS message attributes, for subscription filter policies."""
        attributes = {"event": self.event.value, "request_id": self.request_id}
        if self.request is not None:
            attributes["model"] = self.request.model
            attributes["family"] = self.request.family
        return attributes


def cap_text(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` bytes of UTF-8, marked with an ellipsis when cut."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    marker = " [...]"
    return encoded[: max_bytes - len(marker)].decode("utf-8", "ignore") + marker


def iso_utc(moment: datetime) -> str:
    """The contract's timestamp form: seconds precision, UTC, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(
    *,
    request_id: str,
    occurred_at: datetime,
    request: VideoRequest | None,
    provider: ProviderSummary | None,
    metadata: dict[str, str],
    video: VideoObject | None = None,
    thumbnail: ThumbnailObject | None = None,
    delivered: Delivered | None = None,
    error: EventError | None = None,
    earlier_attempts: Sequence[AttemptSummary] = (),
    key: str | None = None,
) -> VideoEvent:
    """A final event: `video.completed` with a video, `video.failed` with an error; with
    `attempts` (the earlier ones and this one) when an earlier model was tried."""
    event = EventType.COMPLETED if video is not None else EventType.FAILED
    attempts = None
    if earlier_attempts and request is not None:
        last = AttemptSummary(
            model=request.model,
            provider_uuid=provider.uuid if provider else None,
            outcome="completed" if video is not None else "failed",
            error=error,
            used_credit=provider.used_credit if provider else None,
        )
        attempts = [*earlier_attempts, last]
    return VideoEvent(
        event=event,
        event_id=f"{request_id}:{event.value}",
        request_id=request_id,
        occurred_at=iso_utc(occurred_at),
        request=RequestSummary.of(request) if request is not None else None,
        provider=provider,
        video=video,
        thumbnail=thumbnail,
        delivered=delivered,
        error=error,
        attempts=attempts,
        metadata=metadata,
        key=key,
    )


def build_interim_event(
    event: EventType,
    *,
    request_id: str,
    occurred_at: datetime,
    request: VideoRequest,
    provider: ProviderSummary,
    metadata: dict[str, str],
    progress: int | None = None,
    attempt: int = 1,
    key: str | None = None,
) -> VideoEvent:
    """`video.submitted` (once per attempt), or `video.progress` (once per job and percentage);
    an attempt after the first (a fallback) has its own `video.submitted`."""
    assert not event.final, "final events come from build_event"
    event_id = f"{request_id}:{event.value}" if progress is None else f"{request_id}:{event.value}:{progress}"
    if attempt > 1:
        event_id += f":{attempt}" if progress is None else f":attempt-{attempt}"
    return VideoEvent(
        event=event,
        event_id=event_id,
        request_id=request_id,
        occurred_at=iso_utc(occurred_at),
        request=RequestSummary.of(request),
        provider=provider,
        progress=progress,
        metadata=metadata,
        key=key,
    )
