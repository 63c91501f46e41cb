"""What GeminiGen answers, read defensively: the guesses about its undocumented parts live here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from sora_relay.domain.request import VideoRequest

# Where public clients find the finished video's address, in the order they are tried.
_VIDEO_URL_PLACES = ("video_url", "media_url", "generate_result")


class GenerationStatus(IntEnum):
    PROCESSING = 1
    COMPLETED = 2
    FAILED = 3


class GenerationRecord(BaseModel):
    """The provider's record of one generation, from a submit answer or a status call."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    uuid: str
    id: int | None = None
    status: int | None = None
    status_percentage: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    expired_at: datetime | None = None
    estimated_credit: int | float | None = None
    media_type: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    used_credit: int | float | None = None
    # What the account's history list tells about each generation: what it was asked for, and when.
    created_at: datetime | None = None
    input_text: str | None = None
    model_name: str | None = None
    duration: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        for wrapper in ("data", "result"):
            if isinstance(raw.get(wrapper), dict) and "uuid" not in raw:
                raw = raw[wrapper]
                break
        thumbnail = raw.get("thumbnail_url")
        return {
            **raw,
            "video_url": _find_video_url(raw),
            "thumbnail_url": thumbnail if isinstance(thumbnail, str) and _is_address(thumbnail) else None,
        }

    @field_validator("status", "status_percentage", "duration", mode="before")
    @classmethod
    def _number_or_unknown(cls, value: Any) -> int | None:
        # A status we cannot read means "still running": never end a job on a guess.
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return None

    @field_validator(
        "id",
        "error_code",
        "error_message",
        "media_type",
        "input_text",
        "model_name",
        "resolution",
        "aspect_ratio",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("estimated_credit", "used_credit", mode="before")
    @classmethod
    def _credit_or_unknown(cls, value: Any) -> Any:
        # A figure we cannot read is not stated: it must never fail the whole record.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number) or number < 0:
            return None
        return int(number) if number.is_integer() else number

    @field_validator("expired_at", "created_at", mode="before")
    @classmethod
    def _unreadable_time_is_none(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        # A time without a zone is taken as UTC, the zone of every time the provider states.
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    @property
    def failed(self) -> bool:
        return self.status == GenerationStatus.FAILED

    @property
    def ready(self) -> bool:
        """Completed with an address: status 2 can come before the address does."""
        return self.status == GenerationStatus.COMPLETED and bool(self.video_url)

    def may_be(self, request: VideoRequest) -> bool:
        """Whether this generation could be the one `request` asked for: the same prompt and model,
        and the same settings where the record states them (not every record does; a setting it
        leaves out cannot tell two requests apart)."""
        if self.input_text != request.prompt or self.model_name != request.model.value:
            return False
        stated = (
            (self.duration, request.duration),
            (self.resolution, request.resolution.value),
            (self.aspect_ratio, request.aspect_ratio.value),
        )
        return all(theirs is None or theirs == ours for theirs, ours in stated)

    def failure_message(self) -> str:
        detail = ": ".join(part for part in (self.error_code, self.error_message) if part)
        return f"the provider reported the generation failed ({detail or 'no reason given'})"


def _find_video_url(raw: dict[str, Any]) -> str | None:
    generated = raw.get("generated_video")
    if isinstance(generated, list) and generated and isinstance(generated[0], dict):
        url = generated[0].get("video_url")
        if isinstance(url, str) and url:
            return url
    for place in _VIDEO_URL_PLACES:
        value = raw.get(place)
        if isinstance(value, str) and _is_address(value):
            return value
    return None


def _is_address(value: str) -> bool:
    return value.startswith(("https://", "http://"))


@dataclass(frozen=True)
class Accepted:
    record: GenerationRecord


@dataclass(frozen=True)
class Rejected:
    """A 4xx that no retry can fix."""

    status_code: int
    message: str


@dataclass(frozen=True)
class RetryLater:
    """Not taken, for sure (never sent, or refused for now: 408, 425, 429, a refused key); the
    same request may go again."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class MaybeTaken:
    """The request may have reached the provider and been accepted, but no answer says so (a
    timeout or a hang-up after it was sent, a 5xx or 409, an unreadable 2xx). Sending it again
    could pay twice: the account's history must say it was not taken first."""

    reason: str
    retry_after: float | None = None


SubmitOutcome = Accepted | Rejected | RetryLater | MaybeTaken


class HistoryPage(BaseModel):
    """One page of the account's history list, newest first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    records: list[GenerationRecord] = Field(validation_alias=AliasChoices("result", "data", "items"))


class ProviderUnavailable(Exception):
    """A status call that got no usable answer this time."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
