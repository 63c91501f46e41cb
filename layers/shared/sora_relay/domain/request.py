"""The request: the body of one message on the request queue (docs/contract.md, "The request"),
read in two steps: its shape here, then its model's fields against the catalogue
(`domain/families.py`)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_PROMPT_CHARS = 5_000
MAX_FILES = 14  # the most reference images any model takes (the catalogue says each model's)
MAX_FILE_BYTES = 25 * 1024 * 1024
# A request's references together: what one request holds in memory while it is sent.
MAX_REFERENCES_BYTES = 100 * 1024 * 1024
MAX_METADATA_BYTES = 2_048
MAX_REFERENCE_CHARS = 2_048  # what browsers and CDNs reliably carry in an address
# An invalid message's error names its first problems and counts the rest: a body of
# thousands of bad fields must still end in a small event.
MAX_LISTED_PROBLEMS = 10
MAX_FIELD_NAME_CHARS = 64

RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
_REQUEST_ID: TypeAdapter[str] = TypeAdapter(RequestId, config=ConfigDict(defer_build=True))


def _check_reference(uri: str) -> str:
    if problem := reference_problem(uri):
        raise ValueError(problem)
    return uri


ReferenceUri = Annotated[str, AfterValidator(_check_reference)]


def _check_metadata_size(metadata: dict[str, str]) -> dict[str, str]:
    size = len(json.dumps(metadata, ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON, is {size}")
    return metadata


Metadata = Annotated[dict[str, str], AfterValidator(_check_metadata_size)]


def _check_callback(url: str) -> str:
    # http only where the stack allows private receivers (domain/families.py checks); whether
    # it resolves to a public address is asked when each event is delivered.
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("https", "http"):
        raise ValueError("must be an https:// address")
    if problem := _https_problem(f"https://{rest}"):
        raise ValueError(problem)
    return url


CallbackUrl = Annotated[str, StringConstraints(max_length=MAX_REFERENCE_CHARS), AfterValidator(_check_callback)]
_METADATA: TypeAdapter[dict[str, str]] = TypeAdapter(Metadata, config=ConfigDict(defer_build=True))


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class ExtendTarget(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    request_id: RequestId


# The families' setting fields and reference fields, by the provider's names (which fields a
# model takes, and which values, is the catalogue's to say).
SETTING_FIELDS = ("duration", "resolution", "aspect_ratio", "mode", "mode_image", "skip_audio")
REFERENCE_FIELDS = ("files", "ref_images")
_SETTING = Annotated[str, StringConstraints(max_length=64)]
# The most models a request may fall back to after its own (docs/contract.md, "Fallback").
MAX_FALLBACKS = 3


class FamilySettings(BaseModel):
    """The families' setting fields, by the provider's names: which of them a model takes, and
    which values, is the catalogue's to say."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    duration: int | None = None
    resolution: _SETTING | None = None
    aspect_ratio: _SETTING | None = None
    mode: _SETTING | None = None
    mode_image: _SETTING | None = None
    skip_audio: bool | None = None

    def settings(self) -> dict[str, bool | int | str]:
        """The setting fields stated."""
        return {name: value for name in SETTING_FIELDS if (value := getattr(self, name)) is not None}


class FallbackEntry(FamilySettings):
    """A model to try after a failure that cost nothing, with settings of its own (what it leaves
    out comes from the model's defaults); the prompt, references, priority and metadata carry over."""

    model: _SETTING


class RequestMessage(FamilySettings):
    """A message's shape. Strict: a typo or a wrong type must never spend credits."""

    request_id: RequestId | None = None
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    model: _SETTING | None = None
    priority: Priority = Priority.NORMAL
    extend: ExtendTarget | None = None
    files: list[ReferenceUri] | None = Field(default=None, max_length=MAX_FILES)
    ref_images: list[ReferenceUri] | None = Field(default=None, max_length=MAX_FILES)
    metadata: Metadata = Field(default_factory=dict)
    # None: the stack's FallbackModels for the model; []: no fallback.
    fallback: list[FallbackEntry] | None = Field(default=None, max_length=MAX_FALLBACKS)
    callback_url: CallbackUrl | None = None  # every event of the request POSTed there, signed

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("must not be blank")
        return prompt

    @field_validator("files", "ref_images")
    @classmethod
    def _none_is_no_list(cls, references: list[str] | None) -> list[str] | None:
        """No references, whether left out or an empty list (as jobs stored before families say)."""
        return references or None

    @field_validator("fallback", mode="before")
    @classmethod
    def _entries(cls, entries: Any) -> Any:
        """A bare name is a model with its defaults."""
        if not isinstance(entries, list):
            return entries
        return [{"model": entry} if isinstance(entry, str) else entry for entry in entries]


class VideoRequest(RequestMessage):
    """A valid request: its model known, of `family`, its family's settings filled in with their
    defaults (an extension: the model of the video it extends, and only its extend fields)."""

    model: str = "sora-2"
    family: str = "sora"  # jobs stored before there were families were Sora's

    @property
    def references(self) -> list[tuple[str, str]]:
        """Each reference as (the provider's field, its address), in the order given."""
        return [(field, uri) for field in REFERENCE_FIELDS for uri in getattr(self, field) or []]

    def fingerprint(self) -> str:
        """What makes two messages the same job, whatever their request_id."""
        body = self.model_dump(mode="json", exclude={"request_id"}, exclude_none=True)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def as_message(self) -> dict[str, Any]:
        """The message that asks for this request again (read again, it is this request): the
        family is the catalogue's to say, and an extension names no model."""
        exclude = {"family", "model"} if self.extend else {"family"}
        return self.model_dump(mode="json", exclude=exclude, exclude_none=True)


def reference_problem(uri: str) -> str | None:
    """Why a `files` entry is not a reference the worker can read, or None."""
    if len(uri) > MAX_REFERENCE_CHARS:
        return f"must be at most {MAX_REFERENCE_CHARS} characters long"
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not bucket or not key:
            return "must be s3://bucket/key"
        return None
    if uri.startswith("https://"):
        return _https_problem(uri)
    return "must be an s3://bucket/key or https:// address"


# An ASCII host name as DNS has it (underscores included: some CDNs' names carry them).
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def _https_problem(uri: str) -> str | None:
    """Checked whole before any credit is reserved: a bad address fails as invalid_request, not in the download."""
    if any(char.isspace() or not char.isprintable() for char in uri):
        return "must be an https:// address without spaces or control characters"
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises ValueError when not a number in 0-65535
        host = parts.hostname
    except ValueError as error:
        return f"is not a valid https address ({error})"
    if not host:
        return "must be an https:// address with a host"
    if port == 0:
        return "is not a valid https address (port 0)"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return "is not a valid https address (bad IPv6 literal)"
        return None
    if host.isascii() and "xn--" not in host:
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            return f"is not a valid https address (host {host[:MAX_FIELD_NAME_CHARS]!r})"
        return None
    import idna  # only an international name needs it (with unicodedata: about 4 ms of a cold start)

    try:
        idna.encode(host, uts46=True)
    except (idna.IDNAError, UnicodeError) as error:
        return f"is not a valid https address (host name: {error})"
    return None


@dataclass(frozen=True)
class ParsedRequest:
    request_id: str
    request: VideoRequest


@dataclass(frozen=True)
class InvalidRequest:
    """A message that breaks the contract: it ends at once, never reaching the provider."""

    request_id: str
    message: str
    fingerprint: str
    metadata: dict[str, str]


def invalid_message(body: str, message_id: str, message: str) -> InvalidRequest:
    """The outcome of a message that breaks the contract, saying why (`message`)."""
    raw = _loose_json(body)
    return InvalidRequest(
        request_id=_readable_request_id(raw) or message_id,
        message=message,
        fingerprint=hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest(),
        metadata=_readable_metadata(raw),
    )


_EMPTY_NAME = '""'  # how a field whose name is the empty string is named


def describe_errors(error: ValidationError) -> str:
    """One line a user can act on: each field named with the rule it broke (the first
    MAX_LISTED_PROBLEMS of them, then how many more). The input itself is never echoed."""
    parts = []
    details = error.errors(include_url=False, include_input=False, include_context=False)
    for detail in details[:MAX_LISTED_PROBLEMS]:
        if detail["type"] == "json_invalid":
            return "the message body is not valid JSON"
        if detail["type"] == "string_unicode" and not detail["loc"]:
            return "the message body is not valid UTF-8 text"
        if detail["type"] in {"model_type", "model_attributes_type"} and not detail["loc"]:
            return "the message body must be a JSON object"
        field = "".join(_name_part(part) for part in detail["loc"]).removeprefix(".") or "body"
        if detail["type"] == "extra_forbidden":
            parts.append(f"{field}: unknown field")
        else:
            parts.append(f"{field}: {detail['msg'].removeprefix('Value error, ')}")
    if len(details) > MAX_LISTED_PROBLEMS:
        parts.append(f"and {len(details) - MAX_LISTED_PROBLEMS} more problems")
    return "; ".join(parts)


def _name_part(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if len(part) > MAX_FIELD_NAME_CHARS:
        return f".{part[:MAX_FIELD_NAME_CHARS]}..."
    return f".{part or _EMPTY_NAME}"


def _loose_json(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # pydantic already said why; this only looks for request_id
        return None


def _readable_request_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        try:
            return _REQUEST_ID.validate_python(raw.get("request_id"), strict=True)
        except ValidationError:
            return None
    return None


def _readable_metadata(raw: Any) -> dict[str, str]:
    """Echo the user's correlation data even on an invalid message, when it is well formed."""
    if isinstance(raw, dict):
        try:
            return _METADATA.validate_python(raw.get("metadata"), strict=True)
        except ValidationError:
            return {}
    return {}
