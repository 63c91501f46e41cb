"""JSON Schemas of the request and of each event, generated from the models that read and write them.

`python -m sora_relay_tools.schemas events/schemas` (or `make schemas`) writes them; a test fails when
the files there differ from what the models say.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.events import EventError, EventType, ProviderSummary, RequestSummary, VideoEvent, VideoObject
from sora_relay.domain.request import MAX_FALLBACKS, MAX_FILE_BYTES, MAX_METADATA_BYTES, Priority, RequestMessage

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://sora-relay.dev/schemas/"


class AbsentNotNull(GenerateJsonSchema):
    """An optional field is absent when unset, never null: events leave unset fields out."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


class VideoCompleted(VideoEvent):
    """`video.completed`: the video is in the archive bucket."""

    event: Literal[EventType.COMPLETED]
    request: RequestSummary
    provider: ProviderSummary
    video: VideoObject


class VideoFailed(VideoEvent):
    """`video.failed`: the job ended without a video; `error.code` says why."""

    event: Literal[EventType.FAILED]
    error: EventError


class VideoSubmitted(VideoEvent):
    """`video.submitted`: the provider accepted the job (once per job, before its final event)."""

    event: Literal[EventType.SUBMITTED]
    request: RequestSummary
    provider: ProviderSummary


class VideoProgress(VideoEvent):
    """`video.progress`: the provider's progress moved (only with ProgressEvents; best effort)."""

    event: Literal[EventType.PROGRESS]
    request: RequestSummary
    provider: ProviderSummary
    progress: int = Field(ge=0, le=100)


def _request_schema() -> dict[str, Any]:
    """One variant per family, from the catalogue (its models, its fields and the values its
    models take, its reference field), and one for an extension: a message is valid when one of
    them takes it. A message naming no model is the DefaultModel's (`sora-2` unless set)."""
    catalogue = Catalogue.bundled()
    common = RequestMessage.model_json_schema(schema_generator=AbsentNotNull)["properties"]
    # What the model checks in code, said in the schema's own terms.
    shared = {
        "request_id": {**common["request_id"], "description": "The idempotency key; default: the SQS message id."},
        "prompt": {**common["prompt"], "pattern": r"\S"},
        "priority": {"enum": [priority.value for priority in Priority], "default": Priority.NORMAL.value},
        "metadata": {
            **common["metadata"],
            "description": f"Echoed in every event; at most {MAX_METADATA_BYTES} bytes as JSON.",
        },
    }
    setting_types = {
        field: spec.type for family in catalogue.families.values() for field, spec in family.fields.items()
    }
    model_names = {"enum": list(catalogue.models)}
    fallback = {
        "type": "array",
        "maxItems": MAX_FALLBACKS,
        "description": "The models to try, in order, after a failure that cost nothing; default: FallbackModels.",
        "items": {
            "anyOf": [
                model_names,
                _variant(
                    "A model with settings of its own (its family's fields)",
                    {"model": model_names, **{field: {"type": kind} for field, kind in setting_types.items()}},
                    ["model"],
                ),
            ]
        },
    }
    reference = {
        "type": "string",
        "pattern": r"^(s3://[^/]+/.+|https://.+)$",
        "description": f"A reference image, at most {MAX_FILE_BYTES} bytes.",
    }
    variants = []
    for name, family in catalogue.families.items():
        models = [spec for spec in catalogue.models.values() if spec.family == name]
        fields = {
            field: {
                "type": spec.type,
                "enum": sorted({value for model in models for value in catalogue.allowed(model, field) or []}, key=str),
            }
            for field, spec in family.fields.items()
        }
        most = max(catalogue.most_references(model) for model in models)
        properties = {
            **shared,
            "model": {"enum": [model.name for model in models]},
            **fields,
            family.references.field: {"type": "array", "items": reference, "maxItems": most},
            "fallback": fallback,
        }
        if family.shortest_prompt > 1:
            properties["prompt"] = {**properties["prompt"], "minLength": family.shortest_prompt}
        required = ["prompt"] if catalogue.model("sora-2") in models else ["prompt", "model"]
        variants.append(_variant(f"A {name} request", properties, required))
    extend_fields = {
        field: family.fields[field] for family in catalogue.families.values() for field in family.extend_fields or []
    }
    extension = {
        **shared,
        "extend": {
            "type": "object",
            "properties": {"request_id": common["request_id"]},
            "required": ["request_id"],
            "additionalProperties": False,
            "description": "Continue the video of this earlier request (veo, kling, seedance or grok).",
        },
        **{field: {"type": spec.type} for field, spec in extend_fields.items()},
    }
    variants.append(_variant("An extension of an earlier video", extension, ["prompt", "extend"]))
    return {
        "title": "VideoRequest",
        "description": "The body of one message on the request queue (RequestQueueUrl).",
        "anyOf": variants,
    }


def _variant(title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _event_schema(model: type[VideoEvent], *absent: str) -> dict[str, Any]:
    # Open to fields added later (docs/contract.md, "How the contract evolves"): a subscriber
    # validating with this schema keeps accepting the events of every later release of version 1.
    schema: dict[str, Any] = _open(model.model_json_schema(schema_generator=AbsentNotNull))
    # Never on this event: the publisher leaves out what is not set.
    for name in absent:
        del schema["properties"][name]
    # Always written, though the model has defaults for them.
    required = {*schema["required"], "version", "metadata"}
    schema["required"] = [name for name in schema["properties"] if name in required]
    return schema


def _open(schema: Any) -> Any:
    """The schema with no object closed to properties it does not name."""
    if isinstance(schema, dict):
        return {key: _open(value) for key, value in schema.items() if (key, value) != ("additionalProperties", False)}
    if isinstance(schema, list):
        return [_open(item) for item in schema]
    return schema


def documents() -> dict[str, dict[str, Any]]:
    """Each schema file's name and content."""
    generated = {
        "request.schema.json": _request_schema(),
        "video.submitted.schema.json": _event_schema(
            VideoSubmitted, "progress", "video", "thumbnail", "error", "attempts"
        ),
        "video.progress.schema.json": _event_schema(VideoProgress, "video", "thumbnail", "error", "attempts"),
        "video.completed.schema.json": _event_schema(VideoCompleted, "progress", "error"),
        "video.failed.schema.json": _event_schema(VideoFailed, "progress", "video", "thumbnail"),
    }
    return {name: {"$schema": DRAFT, "$id": BASE_ID + name, **schema} for name, schema in generated.items()}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents().items():
        path = directory / name
        path.write_text(render(document))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "events/schemas")):
        print(path)
