"""How GeminiGen writes what it answers, as its public clients of 2025-2026 show it (docs/provider.md):
bare records, UUIDv1 uuids, zone-less UTC times, a history whose prompt is cut and whose rows
are lean, error bodies under `detail`."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

# The history writes `input_text` cut at the first ";" and its tail cut past this many characters.
INPUT_TEXT_CHARS = 120
# What the history calls some models (`model_name`).
MODEL_ALIASES = {"grok-3": "grok-video"}
# The fields of a history row: no settings, no video.
LEAN_ROW_FIELDS = (
    "id",
    "uuid",
    "model_name",
    "input_text",
    "type",
    "status",
    "status_desc",
    "status_percentage",
    "error_code",
    "error_message",
    "estimated_credit",
    "created_at",
    "updated_at",
    "thumbnail_url",
)
STATUS_DESCRIPTIONS = {0: "queued", 1: "processing", 2: "completed", 3: "failed", -1: "failed", -2: "rejected"}
_GREGORIAN_EPOCH = datetime(1582, 10, 15, tzinfo=UTC)


def uuid1_at(moment: datetime, rng: random.Random) -> str:
    """A version-1 UUID whose own timestamp is `moment` (the provider's uuids decode to their
    creation time), with a random clock sequence and node."""
    ticks = int((moment - _GREGORIAN_EPOCH).total_seconds() * 10_000_000) + rng.randrange(10)
    time_low = ticks & 0xFFFFFFFF
    time_mid = (ticks >> 32) & 0xFFFF
    time_hi_version = ((ticks >> 48) & 0x0FFF) | 0x1000
    clock_seq = rng.getrandbits(14) | 0x8000  # the RFC 4122 variant
    node = rng.getrandbits(48)
    value = (time_low << 96) | (time_mid << 80) | (time_hi_version << 64) | (clock_seq << 48) | node
    return str(UUID(int=value))


def zoneless(moment: datetime) -> str:
    """A UTC time as the provider writes it: no zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def recorded_prompt(prompt: str) -> str:
    """The prompt as the history's `input_text` holds it."""
    return prompt.split(";", 1)[0][:INPUT_TEXT_CHARS]


def lean_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record[name] for name in LEAN_ROW_FIELDS if name in record}
    row["input_text"] = recorded_prompt(str(record.get("input_text", "")))
    return row


def error(code: str, message: str) -> dict[str, Any]:
    return {"detail": {"error_code": code, "error_message": message}}


def validation_error(field: str, message: str, kind: str = "value_error") -> dict[str, Any]:
    """FastAPI's 422 body."""
    return {"detail": [{"loc": ["body", field], "msg": message, "type": kind}]}
