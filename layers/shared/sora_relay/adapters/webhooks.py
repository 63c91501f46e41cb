"""Webhooks' way out: POSTs to callback addresses through the vetted client (the address
checked before the request and again when connecting, no redirect followed, bounded time), and
their dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import httpx

from sora_relay.adapters.media.policy import Resolver, host_problem, is_public, public_address, resolve
from sora_relay.domain.webhooks import CallbackRefused, CallbackUnreachable, Delivery

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# A receiver answers within this, or the attempt counts as failed (and is tried again).
WEBHOOK_TIMEOUT_SECONDS = 10.0
# Any host name: a callback's host is the user's to choose; only its address is judged.
_ANY_HOST = ("*",)


@dataclass(frozen=True)
class CallbackPolicy:
    """https to a public address; with `allow_private` (CallbacksAllowPrivate, a local stack),
    http and any address too."""

    refusal: ClassVar[type[Exception]] = CallbackRefused
    allow_private: bool = False
    resolver: Resolver = field(default=resolve, compare=False)
    public: Callable[[str], bool] = field(default=is_public, compare=False)

    def problem(self, url: str) -> str | None:
        target = urlsplit(url)
        if target.scheme != "https" and not (self.allow_private and target.scheme == "http"):
            return f"{target.scheme or 'no'} scheme: webhooks go to https addresses only"
        if self.allow_private:
            return None
        return host_problem((target.hostname or "").lower(), _ANY_HOST, self.resolver, self.public)

    def connect_address(self, host: str, port: int) -> str:
        return host if self.allow_private else public_address(host, self.resolver, self.public)


def webhook_client(allow_private: bool) -> httpx.Client:
    """The client webhooks leave through: the address vetted (`CallbackPolicy`), no redirect
    followed, an answer within WEBHOOK_TIMEOUT_SECONDS."""
    from sora_relay.adapters.media.client import vetted_client

    policy = CallbackPolicy(allow_private=allow_private)
    return vetted_client(policy, timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)


class HttpWebhookSender:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        try:
            # Streamed and closed unread: a receiver's answer is its status, however large its body.
            with self._client.stream("POST", url, headers=headers, content=body.encode()) as answer:
                return answer.status_code
        except CallbackRefused:
            raise
        except httpx.HTTPError as error:
            raise CallbackUnreachable(f"{type(error).__name__}: {error}") from error


class SqsDeadLetters:
    """The event's body as it came (a redrive delivers it again), with why it was not delivered."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def put(self, delivery: Delivery, reason: str) -> None:
        attributes = {"reason": reason[:1024], "callback_url": delivery.callback_url, "event_id": delivery.event_id}
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=delivery.body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
            },
        )
