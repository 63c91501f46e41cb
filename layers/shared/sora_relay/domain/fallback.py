"""When a request goes on to its next model (docs/contract.md, "Fallback"): only after a failure
the provider reported as final and that cost nothing, never while an attempt may have been taken,
never for the request's own faults."""

from __future__ import annotations

import re

from sora_relay.domain.provider import GenerationRecord

# Content filters that refuse a generation at no cost, which another model may well pass: Veo's
# audio filter (Veo 3.x always makes audio, and its filter trips at random) and its refusal of
# prominent people (public clients resend such prompts to Grok or Kling).
COST_FREE_REFUSALS = frozenset(
    {"PUBLIC_ERROR_AUDIO_FILTERED", "PUBLIC_ERROR_PROMINENT_PEOPLE", "PUBLIC_ERROR_PROMINENT_PEOPLE_UPLOAD"}
)
# The provider's codes for a request's own faults (its prompt, its files): another model would
# refuse them too.
_REQUEST_FAULTS = frozenset({"INVALID_INPUT", "TEXT_TOO_LONG", "MAXIMUM_FILE_SIZE_EXCEED", "FILE_TYPE_NOT_ALLOWED"})
# Codes that say a generation's content was refused (its prompt or images): the request's matter,
# not the model's health. Every other failure is the provider's (SYSTEM_ERROR, RESOURCE_EXHAUSTED,
# GEMINI_RATE_LIMIT, none given).
_CONTENT_REFUSALS = ("PUBLIC_ERROR", "GEMINI_RAI")


def provider_fault(record: GenerationRecord) -> bool:
    """Whether a failed generation failed through no fault of its request: counted against its
    model's breaker. A negative status (a policy rejection), a content refusal or a fault of its
    input is the request's."""
    if (record.status is not None and record.status < 0) or record.error_code in _REQUEST_FAULTS:
        return False
    return not (record.error_code or "").startswith(_CONTENT_REFUSALS)


def failure_cost(record: GenerationRecord) -> float | None:
    """What a failed generation cost, as its record shows it: 0 for a policy rejection (a negative
    status) or a content filter's refusal, which the provider never charges; else `used_credit`
    (None while the record does not state it: then it may have cost)."""
    if record.used_credit is not None:
        return record.used_credit
    if (record.status is not None and record.status < 0) or record.error_code in COST_FREE_REFUSALS:
        return 0
    return None


def may_fall_back(record: GenerationRecord, *, after_charged: bool) -> bool:
    """Whether a failed generation lets its request try its next model: it cost nothing, or it
    may have cost and the operator allows that (FallbackAfterCharged), and it was not the request's
    own fault. A cost not stated is not nothing."""
    if record.error_code in _REQUEST_FAULTS:
        return False
    return failure_cost(record) == 0 or after_charged


def refuses_model(reason: str, model: str) -> bool:
    """Whether a refusal (a 4xx no retry fixes) is about the model itself, not the request: the
    provider's words name the model, or its `model` field. Such a refusal cost nothing, and the
    request's other fields may well suit another model. (Which words the provider uses for a
    model it retired is not documented: any refusal naming the model is taken as one; at worst a
    request whose own fields were refused tries its next model, which its intake checked.)"""
    words = reason.lower()
    return model.lower() in words or re.search(r"\bmodel(_name)?\b", words) is not None
