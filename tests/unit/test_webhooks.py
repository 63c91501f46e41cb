"""Webhooks with plain fakes: signed as Standard Webhooks says (checked with its own library), a
replayed or altered delivery refused by it, retried on a schedule for 24 hours, then
dead-lettered; a receiver down for an hour gets every event once it is back."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from sora_relay.domain.webhooks import (
    RETRY_FOR,
    CallbackRefused,
    CallbackUnreachable,
    Delivery,
    shown_secret,
    signed_headers,
)
from sora_relay.services.webhooks import DeadLettered, Delivered, RetryIn, Webhooks
from sora_relay_tools.simulator import ManualClock

from ..support.fakes import FakeMetrics

KEY = b"k" * 32
EVENT = {"event": "video.completed", "event_id": "r-1:video.completed", "request_id": "r-1"}
BODY = json.dumps({**EVENT, "request": {"prompt": "p", "callback_url": "https://hooks.example/x"}})


@dataclass
class Receiver:
    """Answers 503 while `down`, 204 once up; keeps what it got."""

    clock: ManualClock
    down_until: object = None
    got: list[tuple[dict[str, str], str]] = field(default_factory=list)
    refuse: Exception | None = None

    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        if self.refuse is not None:
            raise self.refuse
        if self.down_until is not None and self.clock() < self.down_until:
            return 503
        self.got.append((headers, body))
        return 204


@dataclass
class DeadLetterQueue:
    kept: list[tuple[Delivery, str]] = field(default_factory=list)

    def put(self, delivery: Delivery, reason: str) -> None:
        self.kept.append((delivery, reason))


@pytest.fixture
def clock() -> ManualClock:
    # Now: a receiver's library verifies a delivery's timestamp against its own clock.
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def webhooks(clock: ManualClock, receiver: Receiver, dead: DeadLetterQueue | None = None) -> Webhooks:
    return Webhooks(receiver, lambda: KEY, dead or DeadLetterQueue(), clock, FakeMetrics())


def until_done(hooks: Webhooks, clock: ManualClock, body: str = BODY) -> tuple[object, int]:
    """Deliver as the queue would: each failed delivery comes again after the delay it asked for."""
    first, attempt = clock(), 1
    while isinstance(outcome := hooks.deliver_queued(body, first, attempt), RetryIn):
        clock.advance(outcome.delay)
        attempt += 1
    return outcome, attempt


def test_a_delivery_is_signed_as_standard_webhooks_verifies_it(clock) -> None:
    receiver = Receiver(clock)
    assert webhooks(clock, receiver).deliver_queued(BODY, clock(), 1) == Delivered()
    [(headers, body)] = receiver.got
    assert headers["webhook-id"] == "r-1:video.completed"
    assert Webhook(shown_secret(KEY)).verify(body, headers)["event_id"] == "r-1:video.completed"


def test_an_altered_body_fails_verification(clock) -> None:
    headers = signed_headers(KEY, "r-1:video.completed", int(clock().timestamp()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(shown_secret(KEY)).verify(BODY.replace("completed", "failed"), headers)


def test_a_delivery_replayed_ten_minutes_later_fails_verification() -> None:
    signed_at = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp())
    headers = signed_headers(KEY, "r-1:video.completed", signed_at, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(shown_secret(KEY)).verify(BODY, headers)


def test_a_delivery_signed_with_another_secret_fails_verification(clock) -> None:
    headers = signed_headers(b"x" * 32, "r-1:video.completed", int(clock().timestamp()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(shown_secret(KEY)).verify(BODY, headers)


def test_each_attempt_is_signed_anew_with_its_own_timestamp(clock) -> None:
    start = clock()
    receiver = Receiver(clock, down_until=start + timedelta(seconds=1))
    hooks = webhooks(clock, receiver)
    assert isinstance(hooks.deliver_queued(BODY, start, 1), RetryIn)
    clock.advance(timedelta(seconds=5))
    hooks.deliver_queued(BODY, start, 2)
    [(headers, _)] = receiver.got
    assert int(headers["webhook-timestamp"]) == int((start + timedelta(seconds=5)).timestamp())


def test_a_receiver_down_for_an_hour_gets_the_event_within_half_an_hour_of_coming_back(clock) -> None:
    back_at = clock() + timedelta(hours=1)
    receiver = Receiver(clock, down_until=back_at)
    outcome, attempts = until_done(webhooks(clock, receiver), clock)
    assert outcome == Delivered()
    assert len(receiver.got) == 1
    assert back_at <= clock() <= back_at + timedelta(minutes=30)
    assert attempts < 12


def test_the_retries_back_off_soon_at_first_and_at_most_half_an_hour(clock) -> None:
    start = clock()
    receiver = Receiver(clock, down_until=start + timedelta(hours=3))
    hooks = webhooks(clock, receiver)
    delays = [hooks.deliver_queued(BODY, start, attempt).delay for attempt in range(1, 9)]  # type: ignore[union-attr]
    assert delays[0] == timedelta(seconds=5)
    assert delays == sorted(delays)
    assert max(delays) == timedelta(minutes=30)


def test_an_event_not_delivered_in_24_hours_is_dead_lettered_with_the_last_answer(clock) -> None:
    dead = DeadLetterQueue()
    start = clock()
    receiver = Receiver(clock, down_until=start + timedelta(days=2))
    outcome, attempts = until_done(webhooks(clock, receiver, dead), clock)
    assert isinstance(outcome, DeadLettered)
    assert "HTTP 503" in outcome.reason
    assert clock() - start <= RETRY_FOR
    [(delivery, _)] = dead.kept
    assert delivery.body == BODY
    assert 40 < attempts < 70


def test_a_receiver_that_cannot_be_reached_is_tried_again(clock) -> None:
    receiver = Receiver(clock, refuse=CallbackUnreachable("ConnectError"))
    outcome = webhooks(clock, receiver).deliver_queued(BODY, clock(), 1)
    assert isinstance(outcome, RetryIn)
    assert "ConnectError" in outcome.reason


def test_an_address_that_may_not_be_called_is_dead_lettered_at_once(clock) -> None:
    dead = DeadLetterQueue()
    receiver = Receiver(clock, refuse=CallbackRefused("host resolves to a non-public address (10.0.0.1)"))
    outcome = webhooks(clock, receiver, dead).deliver_queued(BODY, clock(), 1)
    assert isinstance(outcome, DeadLettered)
    assert "10.0.0.1" in dead.kept[0][1]


@pytest.mark.parametrize("body", ["not json", json.dumps({"event_id": "x"}), json.dumps({"request": {}})])
def test_a_queued_message_that_is_no_event_with_a_callback_is_dead_lettered(clock, body) -> None:
    dead = DeadLetterQueue()
    receiver = Receiver(clock)
    assert isinstance(webhooks(clock, receiver, dead).deliver_queued(body, clock(), 1), DeadLettered)
    assert receiver.got == []
    assert dead.kept[0][0].body == body
