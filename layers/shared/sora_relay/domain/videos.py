"""The HTTP API's shapes (docs/api.md): OpenAI's Videos API over the relay's requests.

A body's OpenAI fields (`seconds`, `size`) and OpenRouter's (`duration`, `resolution`,
`aspect_ratio`) become the relay's own request fields here, through the catalogue; the request is
then read as every message is (`domain/families.py`). A job is answered as OpenAI's video object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.events import AttemptSummary, Delivered, EventError, ThumbnailObject, VideoObject
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.request import RequestMessage

# The body fields that hold JSON (a form sends them as text).
_JSON_FIELDS = ("metadata", "fallback", "extend", "files", "ref_images")
_INTEGER_FIELDS = ("duration",)
_BOOLEAN_FIELDS = ("skip_audio",)
# How the SDK writes a nested field in a form: `metadata[campaign]`, `video[id]`.
_BRACKETED = re.compile(r"^([a-z_]+)\[([^\]]*)\]$")


class ApiError(Exception):
    """An answer other than success, in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after  # seconds, for a 429

    @property
    def type(self) -> str:
        return {401: "authentication_error", 404: "not_found_error", 409: "conflict", 429: "rate_limit_error"}.get(
            self.status, "invalid_request_error"
        )

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def not_found(video_id: str) -> ApiError:
    # The same answer whether the video is another key's or nobody's: ids tell nothing.
    return ApiError(404, f"No video found with id '{video_id}'.", param="id", code="not_found")


def form_fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A form's fields as a JSON body would hold them: `a[b]=c` as {"a": {"b": "c"}}, `a[]` as a
    list, JSON text where a field holds JSON, numbers and booleans where the field is one."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        bracketed = _BRACKETED.match(name)
        if bracketed is None:
            fields[name] = value
            continue
        outer, inner = bracketed.groups()
        if inner == "":
            fields.setdefault(outer, []).append(value)
        else:
            fields.setdefault(outer, {})[inner] = value
    for name in _JSON_FIELDS:
        if isinstance(fields.get(name), str):
            try:
                fields[name] = json.loads(fields[name])
            except ValueError:
                raise ApiError(400, f"{name} must be JSON", param=name) from None
    for name in _INTEGER_FIELDS:
        if isinstance(fields.get(name), str) and fields[name].isdigit():
            fields[name] = int(fields[name])
    for name in _BOOLEAN_FIELDS:
        if fields.get(name) in ("true", "false"):
            fields[name] = fields[name] == "true"
    return fields


def request_message(body: dict[str, Any], catalogue: Catalogue, default_model: str) -> dict[str, Any]:
    """The relay's request for an API body: `seconds` as `duration`, `size` as the settings that
    make that frame for the model's family; every other field by its own name. Raises ApiError
    naming `seconds` or `size` when the model cannot make it."""
    message = dict(body)
    seconds = message.pop("seconds", None)
    if seconds is not None:
        if isinstance(seconds, bool) or not str(seconds).isdigit():
            raise ApiError(400, f"seconds must be a whole number of seconds, not {seconds!r}", param="seconds")
        message["duration"] = int(seconds)
    size = message.pop("size", None)
    if size is not None:
        spec = catalogue.model(str(message.get("model") or default_model))
        if spec is None:
            return message  # the model itself is refused, by name
        sizes = catalogue.family_of(spec).sizes
        if not isinstance(size, str) or size not in sizes:
            takes = ", ".join(sizes)
            raise ApiError(400, f"size {size!r} is not a size {spec.name} makes (it makes {takes})", param="size")
        message.update(sizes[size])
    return message


def problem_param(message: str, body: dict[str, Any]) -> str:
    """The field an invalid request's first problem names, by the body's own name for it."""
    field = message.split(":", 1)[0].split("[", 1)[0].split(".", 1)[0].strip()
    if field == "duration" and "seconds" in body:
        return "seconds"
    if field in ("resolution", "aspect_ratio") and "size" in body:
        return "size"
    return field


class CreateVideoBody(RequestMessage):
    """`POST /v1/videos`: OpenAI's fields besides the request's own (OpenRouter's `duration`,
    `resolution` and `aspect_ratio` are the request's own names). As a form, `input_reference`
    parts are image files. (For the API's document: the body is read by `request_message`.)"""

    seconds: str | int | None = Field(default=None, description="the clip's length: the family's duration")
    size: str | None = Field(default=None, description="WxH, such as 1280x720: the family's resolution and ratio")


class ExtendVideoBody(BaseModel):
    """`POST /v1/videos/extensions`: OpenAI's extension of an earlier video of the key's."""

    model_config = ConfigDict(defer_build=True)

    class Earlier(BaseModel):
        model_config = ConfigDict(defer_build=True)

        id: str

    prompt: str
    seconds: str | int | None = None
    video: Earlier


def with_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The API's OpenAPI document with its calls' bodies described (its routes read their bodies
    themselves, JSON or form, so the router cannot say them)."""
    for path, model in (("/v1/videos", CreateVideoBody), ("/v1/videos/extensions", ExtendVideoBody)):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        document["components"]["schemas"].update(schema.pop("$defs", {}))
        document["components"]["schemas"][model.__name__] = schema
        reference = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        document["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": reference, "multipart/form-data": reference},
        }
    return document


class Video(BaseModel):
    """OpenAI's video object, with the relay's own fields after its."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    object: Literal["video"] = "video"
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    model: str | None
    seconds: str | None
    size: str | None
    prompt: str | None
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    error: EventError | None = None
    # The relay's own.
    metadata: dict[str, str] = {}
    video: VideoObject | None = None
    thumbnail: ThumbnailObject | None = None
    delivered: Delivered | None = None
    attempts: list[AttemptSummary] | None = None


class VideoList(BaseModel):
    model_config = ConfigDict(defer_build=True)

    object: Literal["list"] = "list"
    data: list[Video]
    has_more: bool
    first_id: str | None
    last_id: str | None


class Deleted(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


def _unix(moment: datetime | str | None) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return int(moment.timestamp())


def size_of(job: Job, catalogue: Catalogue) -> str | None:
    """The frame the job's video has: as delivered, else the size its settings make."""
    event = job.final_event
    if event is not None and event.delivered is not None and event.delivered.width and event.delivered.height:
        return f"{event.delivered.width}x{event.delivered.height}"
    request = job.request
    if request is None or request.family not in catalogue.families:
        return None
    settings = request.settings()
    for size, makes in catalogue.families[request.family].sizes.items():
        if all(settings.get(name) == value for name, value in makes.items()):
            return size
    return None


def video_of(job: Job, catalogue: Catalogue) -> Video:
    """The job as OpenAI's video object: `queued` until the provider has it, `completed` once
    archived (its bytes are then downloadable), `failed` with the event's error."""
    event = job.final_event
    if job.state is JobState.ARCHIVED:
        status: Literal["queued", "in_progress", "completed", "failed"] = "completed"
    elif job.state is JobState.FAILED:
        status = "failed"
    elif job.state is JobState.RECEIVED:
        status = "queued"
    else:
        status = "in_progress"
    request = job.request
    return Video(
        id=job.request_id,
        status=status,
        progress=100 if status == "completed" else job.progress,
        model=request.model if request else None,
        seconds=str(request.duration) if request and request.duration is not None else None,
        size=size_of(job, catalogue),
        prompt=request.prompt if request else None,
        created_at=_unix(job.created_at) or 0,
        completed_at=_unix(event.occurred_at) if event is not None and job.state.final else None,
        expires_at=_unix(job.expired_at) if not job.state.final else None,
        error=event.error if event is not None else None,
        metadata=job.metadata,
        video=event.video if event is not None else None,
        thumbnail=event.thumbnail if event is not None else None,
        delivered=event.delivered if event is not None else None,
        attempts=event.attempts if event is not None else None,
    )


class Upload(BaseModel):
    """A file that came with a request (`input_reference`)."""

    model_config = ConfigDict(defer_build=True)

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    has_more: bool


class KeyVideos(Protocol):
    """Each key's requests, by arrival (an index of the jobs table)."""

    def page(self, key: str, *, limit: int, after: Job | None, newest_first: bool) -> Page: ...


class Objects(Protocol):
    """The archive bucket, as the API uses it."""

    def put_input(self, uri: str, data: bytes, content_type: str) -> None:
        """Store a request's uploaded reference at `uri` (s3://bucket/key in the input location)."""

    def download_url(self, bucket: str, key: str) -> str:
        """A short-lived address from which the object can be read without credentials."""

    def remove(self, bucket: str, keys: list[str]) -> None: ...
