"""What GeminiGen answers, read defensively: the guesses about its undocumented parts live here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.request import VideoRequest

# Where public clients find the finished video's address, in the order they are tried.
_VIDEO_URL_PLACES = ("video_url", "media_url", "generate_result")
_SCHEMES = ("https://", "http://")
# A history row's `input_text` is the prompt cut at its first ";" or with its tail cut off
# (two independent clients report each; one matches on a 90 % prefix): a row is this prompt's
# when its text begins the prompt and is at least this long, or the whole part before the ";".
RECORDED_PROMPT_FLOOR = 20


class GenerationStatus(IntEnum):
    QUEUED = 0
    PROCESSING = 1
    COMPLETED = 2
    FAILED = 3
    # Below 0: some families' failures (-1) and policy rejections (-2).


class GenerationRecord(BaseModel):
    """The provider's record of one generation, from a submit answer or a status call."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

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
        generated = raw.get("generated_video")
        # The full record states a video's settings on the video itself.
        video = generated[0] if isinstance(generated, list) and generated and isinstance(generated[0], dict) else {}
        settings = {name: raw.get(name, video.get(name)) for name in ("duration", "resolution", "aspect_ratio")}
        return {
            **raw,
            **settings,
            "video_url": _find_video_url(raw, video),
            "thumbnail_url": _address(thumbnail),
        }

    @field_validator("status", "status_percentage", "duration", mode="before")
    @classmethod
    def _number_or_unknown(cls, value: Any) -> int | None:
        # A status we cannot read means "still running": never end a job on a guess.
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().removeprefix("-").isdigit():
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
        """Status 3, or a negative status (a family's failure or policy rejection): final at once."""
        return self.status is not None and (self.status == GenerationStatus.FAILED or self.status < 0)

    @property
    def ready(self) -> bool:
        """Completed with an address: status 2 can come before the address does."""
        return self.status == GenerationStatus.COMPLETED and bool(self.video_url)

    def may_be(self, request: VideoRequest) -> bool:
        """Whether this generation could be the one `request` asked for, as far as this record
        tells: its prompt as the history records it, a model that is the request's (or a name
        not known to be another's), and no setting the record states known to be another value
        (a list row states none)."""
        if not _could_be_prompt(self.input_text or "", request.prompt):
            return False
        if not _could_be_model(self.model_name, request.model):
            return False
        return self.settings_say(request) is not False

    def settings_say(self, request: VideoRequest) -> bool | None:
        """What the settings this record states say of `request`, each read in the catalogue's
        words for the request's family (a Sora record says `720p` for `small`): False when one
        is another value of its field, None when one is in words the catalogue does not know
        (they cannot tell: never "not this one"), else True. A setting left out, or left to the
        provider by the request (an extension's), tells nothing."""
        catalogue = Catalogue.bundled()
        stated = (
            ("duration", self.duration, request.duration),
            ("resolution", self.resolution, request.resolution),
            ("aspect_ratio", self.aspect_ratio, request.aspect_ratio),
        )
        said: bool | None = True
        for name, theirs, ours in stated:
            if theirs is None or ours is None:
                continue
            match catalogue.recorded_as(request.family, name, theirs, ours):
                case False:
                    return False
                case None:
                    said = None
        return said

    @property
    def states_settings(self) -> bool:
        """Whether this is a full record (a list row states no settings and no video)."""
        return self.duration is not None or self.video_url is not None

    def failure_message(self) -> str:
        detail = ": ".join(part for part in (self.error_code, self.error_message) if part)
        status = f"status {self.status}" if self.status is not None else "failed"
        return f"the provider reported the generation failed ({status}; {detail or 'no reason given'})"


def full_media_type(stated: str | None) -> str | None:
    """The provider's `media_type` when it names a type the archive can state (`video/mp4`);
    None when it does not (`video` alone, a CDN's `application/octet-stream`): then the file's
    own bytes tell."""
    if not stated:
        return None
    kind = stated.split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    if not main or not sub or kind == "application/octet-stream":
        return None
    return kind


def recorded_prompt_key(prompt: str) -> str:
    """What of a prompt the history could record and still be told from another's: two prompts
    with the same key could each match the other's history row (see `_could_be_prompt`)."""
    whole = prompt.strip()
    return whole[: min(RECORDED_PROMPT_FLOOR, len(_before_semicolon(whole)))]


def _before_semicolon(prompt: str) -> str:
    return prompt.split(";", 1)[0].rstrip()


def _could_be_prompt(input_text: str, prompt: str) -> bool:
    recorded, whole = input_text.strip(), prompt.strip()
    return whole.startswith(recorded) and len(recorded) >= len(recorded_prompt_key(whole))


def _could_be_model(model_name: str | None, model: str) -> bool:
    """The request's model, or what the history calls it (the catalogue's `history_names`); a
    name not known to be another model's cannot tell (the provider may rename), so it does not
    rule the record out."""
    catalogue = Catalogue.bundled()
    if model_name is None or model_name in catalogue.history_names(model):
        return True
    return model_name not in catalogue.known_names()


def _find_video_url(raw: dict[str, Any], video: dict[str, Any]) -> str | None:
    for value in (video.get("video_url"), *(raw.get(place) for place in _VIDEO_URL_PLACES)):
        address = _address(value)
        if address:
            return address
    return None


def _address(value: Any) -> str | None:
    """An address as stated, or the one embedded in it: some come with a bogus host in front of
    the real address (`https://s3.../https://edge-files.geminigen.ai/...`; two public clients
    strip everything before the embedded one). Whatever it is, it is vetted before any download."""
    if not isinstance(value, str) or not value.startswith(_SCHEMES):
        return None
    embedded = max(value.rfind(scheme, 1) for scheme in _SCHEMES)
    return value[embedded:] if embedded > 0 else value


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
    """Not taken, for sure (never sent, or refused for now: 408, 425, 429, the plan's limit on
    running generations, credit locked by running ones); the same request may go again.
    `account_refused`: the account itself refuses (out of credit, a refused key), which an
    operator must fix; the request waits for it."""

    reason: str
    retry_after: float | None = None
    account_refused: bool = False


@dataclass(frozen=True)
class MaybeTaken:
    """The request may have reached the provider and been accepted, but no answer says so (a
    timeout or a hang-up after it was sent, a 5xx or 409, an unreadable 2xx). Sending it again
    could pay twice: the account's history must say it was not taken first. `server_error`: the
    provider answered with a 5xx (its own fault, counted against the model's breaker)."""

    reason: str
    retry_after: float | None = None
    server_error: bool = False


SubmitOutcome = Accepted | Rejected | RetryLater | MaybeTaken


class HistoryPage(BaseModel):
    """One page of the account's history list (its order and largest page are not documented)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    records: list[GenerationRecord] = Field(validation_alias=AliasChoices("result", "data", "items"))
    total: int | None = None

    @field_validator("total", mode="before")
    @classmethod
    def _count_or_unknown(cls, value: Any) -> int | None:
        # A count written as a string ("120") is a count; anything else is not stated.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class ProviderUnavailable(Exception):
    """A status call that got no usable answer this time."""

    def __init__(self, reason: str, retry_after: float | None = None, *, throttled: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.throttled = throttled  # the provider said too many calls (HTTP 429)
