"""Webhooks (docs/api.md, "Webhooks"): each event of a request that names a `callback_url`,
POSTed there and signed as the Standard Webhooks specification says, retried with backoff for
24 hours, then dead-lettered.

The signature is three lines of the standard library: the specification's own library also
brings an HTTP client and date parsing the functions have no use for."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105  # the specification's prefix, not a secret
# How long an event is retried before it is dead-lettered.
RETRY_FOR = timedelta(hours=24)
# The wait before each retry (the last repeats): soon at first, then at most half an hour, so
# that a receiver that was down gets its events within half an hour of coming back.
BACKOFF = tuple(timedelta(seconds=s) for s in (5, 30, 120, 300, 900, 1800))


def shown_secret(key: bytes) -> str:
    """The secret as receivers configure it: `whsec_` and the key in base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def signed_headers(key: bytes, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}


def retry_delay(attempt: int) -> timedelta:
    """The wait after the `attempt`th failed delivery (1 for the first)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


@dataclass(frozen=True)
class Delivery:
    """One event to deliver: its body as published, where to, since when it is being tried."""

    event_id: str
    body: str
    callback_url: str
    first_sent_at: datetime
    attempt: int  # 1 for the first delivery


class _Addressed(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    callback_url: str


class _QueuedEvent(BaseModel):
    """What a webhook needs of a queued event (the rest is delivered as it is)."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    event_id: str
    request: _Addressed


def delivery(body: str, first_sent_at: datetime, attempt: int) -> Delivery | None:
    """A queued event as a delivery; None when the body is no event with a callback_url."""
    try:
        event = _QueuedEvent.model_validate_json(body)
    except ValidationError:
        return None
    return Delivery(event.event_id, body, event.request.callback_url, first_sent_at, attempt)


class CallbackRefused(Exception):
    """The address may not be called (not https, not public): the event is dead-lettered at once."""


class CallbackUnreachable(Exception):
    """No answer came (no connection, a timeout): tried again later."""


class WebhookSender(Protocol):
    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        """POST `body` to `url` (no redirect followed); the answer's status. Raises
        CallbackRefused or CallbackUnreachable."""


class DeadLetters(Protocol):
    def put(self, delivery: Delivery, reason: str) -> None:
        """Keep an event that could not be delivered, with why."""
