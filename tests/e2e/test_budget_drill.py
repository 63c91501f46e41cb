"""The budget drill: the template's functions on the local stack (moto, the simulator, a virtual
clock), 30 requests of mixed priority, MaxActiveGenerations=3, a daily credit budget enough for
10, while the provider loses answers and invocations die right after it accepted. While the day
is spent the waiting requests send and receive no message; raising the budget starts them in
priority order; the day's ledger is what the paid generations used, and nothing is paid twice."""

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from sora_relay_tools.faults.crash import CrashDrill
from sora_relay_tools.faults.suites import quiet

from ..support.paths import TEMPLATE

PRICE = 30  # what the simulator quotes (and a finished generation uses) for a sora-2 video
PRIORITIES = ("high", "normal", "low")
LOSSY_SHARE = 0.35


@dataclass
class Drilled:
    drill: CrashDrill
    sent: dict[str, str]  # request_id: priority
    # Each request's messages received while the day's budget was spent, once the line was still.
    received_while_spent: Counter[str] = field(default_factory=Counter)
    sent_while_spent: int = 0
    completed_before_raise: set[str] = field(default_factory=set)
    started_after_raise: list[str] = field(default_factory=list)  # in the order their generations began
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    spent_by_day: float = 0.0


def _round(drill: CrashDrill, events: dict[str, list[dict[str, Any]]]) -> None:
    drill._round()  # each trigger queue delivered, one poll, then 21 minutes pass
    for event in drill.stack.drain_events():
        events.setdefault(event["request_id"], []).append(event)


def _final(events: list[dict[str, Any]]) -> bool:
    return any(event["event"] in ("video.completed", "video.failed") for event in events)


@pytest.fixture(scope="module")
def drilled() -> Iterator[Drilled]:
    with quiet(), CrashDrill(TEMPLATE) as drill:
        drill.clock.now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # the whole drill within one UTC day
        driver = drill.stack.driver
        assert driver is not None
        driver.configure({"MAX_ACTIVE_GENERATIONS": "3", "DAILY_CREDIT_BUDGET": str(10 * PRICE)})
        drill.simulator.lose_answers(LOSSY_SHARE, seed=3)
        drill.injector.kill_after_submitting(LOSSY_SHARE, seed=3)
        sent = {f"b-{number:02}": PRIORITIES[number % 3] for number in range(30)}
        for request_id, priority in sent.items():
            body = {"request_id": request_id, "prompt": f"{request_id} drill: a heron", "priority": priority}
            drill.stack.send(json.dumps(body))
        drilled = Drilled(drill, sent)
        events = drilled.events
        # Until the day's budget has paid what it can and the line stands still.
        for _ in range(12):
            _round(drill, events)
        drilled.completed_before_raise = {rid for rid, evs in events.items() if _final(evs)}
        # The day stays spent: what the waiting requests cost in messages, over three more rounds.
        received: Counter[str] = Counter()
        receive = driver.receive

        def counted(trigger: Any, wait_seconds: int = 0) -> list[dict[str, Any]]:
            messages = receive(trigger, wait_seconds)
            for message in messages:
                body = json.loads(message["Body"])
                received[str(body.get("request_id", "?"))] += 1
            return messages

        driver.receive = counted  # type: ignore[method-assign]
        sends_before = drill.injector.calls.count("sqs.SendMessage")
        drill.injector.calls.clear()
        for _ in range(3):
            _round(drill, events)
        drilled.received_while_spent = received
        drilled.sent_while_spent = drill.injector.calls.count("sqs.SendMessage")
        del sends_before
        driver.receive = receive  # type: ignore[method-assign]
        # The budget raised: the rest start, in their order.
        started_before = {generation.fields["prompt"].split(" ")[0] for generation in drill.simulator.submissions()}
        driver.configure({"DAILY_CREDIT_BUDGET": str(100 * PRICE)})
        for _ in range(30):
            _round(drill, events)
            if all(_final(events.get(request_id, [])) for request_id in sent):
                break
        generations = sorted(drill.simulator.submissions(), key=lambda generation: generation.created_at)
        drilled.started_after_raise = [
            request_id
            for generation in generations
            if (request_id := generation.fields["prompt"].split(" ")[0]) not in started_before
        ]
        day = drill.clock.now.date().isoformat()
        item = drill.stack.client("dynamodb").get_item(
            TableName=drill.stack.outputs["JobsTableName"], Key={"request_id": {"S": f"budget#{day}"}}
        )
        drilled.spent_by_day = float(item["Item"]["spent"]["N"])
        drill.simulator.lose_answers(0.0)
        drill.injector.kill_after_submitting(0.0)
        yield drilled


def test_the_budget_pays_for_ten_and_the_rest_wait(drilled) -> None:
    assert len(drilled.completed_before_raise) == 10
    assert drilled.drill.injector.crashes + drilled.drill.simulator.answers_lost >= 3  # the faults were met


def test_no_message_is_sent_or_received_for_a_request_waiting_on_the_budget(drilled) -> None:
    waiting = set(drilled.sent) - drilled.completed_before_raise
    assert drilled.sent_while_spent == 0
    assert {rid: count for rid, count in drilled.received_while_spent.items() if rid in waiting} == {}


def test_raising_the_budget_starts_the_waiting_requests_in_priority_order(drilled) -> None:
    ranks = [PRIORITIES.index(drilled.sent[request_id]) for request_id in drilled.started_after_raise]
    assert len(ranks) == 20
    assert ranks == sorted(ranks)


def test_every_request_completes_once_and_nothing_is_paid_twice(drilled) -> None:
    finals = {
        rid: [e for e in evs if e["event"] in ("video.completed", "video.failed")]
        for rid, evs in drilled.events.items()
    }
    assert {rid for rid, evs in finals.items() if evs and evs[0]["event"] == "video.completed"} >= set(drilled.sent)
    prompts = Counter(generation.fields["prompt"] for generation in drilled.drill.simulator.submissions())
    assert len(prompts) == 30
    assert set(prompts.values()) == {1}


def test_the_days_ledger_is_what_the_paid_generations_used(drilled) -> None:
    used = sum(drilled.drill.simulator.credit_used(g) or 0 for g in drilled.drill.simulator.submissions())
    assert drilled.spent_by_day == used == 30 * PRICE
