"""Delivering one webhook: signed at each attempt (a fresh timestamp), a 2xx ends it, anything
else is tried again after its backoff until 24 hours have passed since the event was first
queued; then, or at once for an address that may not be called, it is dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sora_relay.domain.ports import Clock, Metrics
from sora_relay.domain.webhooks import (
    RETRY_FOR,
    CallbackRefused,
    CallbackUnreachable,
    DeadLetters,
    Delivery,
    WebhookSender,
    delivery,
    retry_delay,
    signed_headers,
)
from sora_relay.observability import logger


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryIn:
    delay: timedelta
    reason: str


@dataclass(frozen=True)
class DeadLettered:
    reason: str


DeliveryOutcome = Delivered | RetryIn | DeadLettered


@dataclass(frozen=True)
class Webhooks:
    sender: WebhookSender
    key: Callable[[], bytes]  # the signing key (the secret's), read when needed
    dead_letters: DeadLetters
    clock: Clock
    metrics: Metrics

    def deliver_queued(self, body: str, first_sent_at: datetime | None, attempt: int) -> DeliveryOutcome:
        """A queued event delivered; one that is no event with a callback_url is dead-lettered."""
        since = first_sent_at or self.clock()
        queued = delivery(body, since, attempt)
        if queued is None:
            unreadable = Delivery("", body, "", since, attempt)
            return self._dead_letter(unreadable, "the queued message is no event with a callback_url")
        return self.deliver(queued)

    def deliver(self, delivery: Delivery) -> DeliveryOutcome:
        now = self.clock()
        headers = signed_headers(self.key(), delivery.event_id, int(now.timestamp()), delivery.body)
        headers |= {"content-type": "application/json", "user-agent": "sora-relay-webhooks/1"}
        try:
            status = self.sender.post(delivery.callback_url, headers, delivery.body)
        except CallbackRefused as refused:
            return self._dead_letter(delivery, f"the callback address may not be called: {refused}")
        except CallbackUnreachable as error:
            reason = f"could not be reached ({error})"
        else:
            if 200 <= status < 300:
                self.metrics.count("WebhooksDelivered")
                return Delivered()
            reason = f"answered HTTP {status}"
        delay = retry_delay(delivery.attempt)
        if now + delay - delivery.first_sent_at > RETRY_FOR:
            hours = int(RETRY_FOR.total_seconds() // 3600)
            return self._dead_letter(delivery, f"not delivered in {hours} hours of retries; the last attempt {reason}")
        logger.info("webhook not delivered; it is tried again", extra={"reason": reason, "attempt": delivery.attempt})
        self.metrics.count("WebhookRetries")
        return RetryIn(delay, reason)

    def _dead_letter(self, delivery: Delivery, reason: str) -> DeadLettered:
        self.dead_letters.put(delivery, reason)
        logger.error("webhook dead-lettered", extra={"reason": reason, "event_id": delivery.event_id})
        self.metrics.count("WebhooksDeadLettered")
        return DeadLettered(reason)
