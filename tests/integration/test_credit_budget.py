"""The credit budget in the jobs table, and the submit function holding requests once it is spent."""

from datetime import date

import boto3
import pytest

from sora_relay.adapters.credit_ledger import DynamoCreditLedger
from sora_relay.domain.ports import DayLedger

from ..support.aws import load_function

DAY = date(2026, 11, 23)


@pytest.fixture
def ledger(stack) -> DynamoCreditLedger:
    return DynamoCreditLedger(boto3.client("dynamodb"), stack.table_name)


def test_reservation_within_the_limit_is_added(ledger) -> None:
    assert ledger.reserve(DAY, 30, limit=100)
    assert ledger.reserve(DAY, 70, limit=100)
    assert ledger.day(DAY).spent == 100


def test_reservation_past_the_limit_changes_nothing(ledger) -> None:
    assert ledger.reserve(DAY, 60, limit=100)
    assert not ledger.reserve(DAY, 41, limit=100)
    assert ledger.day(DAY).spent == 60


def test_adjustment_corrects_the_day_and_keeps_the_quote_for_later_days(ledger) -> None:
    ledger.reserve(DAY, 100, limit=100)
    ledger.adjust(DAY, -25, ("sora-2-pro:10:small", 75))
    assert ledger.day(DAY).spent == 75
    assert ledger.day(date(2026, 11, 24)) == DayLedger(spent=0, quotes={"sora-2-pro:10:small": 75})


def test_budget_day_expires_and_is_not_a_job(ledger, stack) -> None:
    ledger.reserve(DAY, 10, limit=100)
    item = stack.job("budget#2026-11-23")
    assert "state" not in item
    assert int(item["expires_at"]["N"]) > 0


def test_submit_function_holds_requests_once_the_budget_is_spent(stack, simulator, monkeypatch) -> None:
    monkeypatch.setenv("DAILY_CREDIT_BUDGET", "60")  # the simulator quotes 30 for sora-2
    # One at a time: moto does not make a conditional update atomic across threads (DynamoDB does).
    monkeypatch.setenv("SUBMIT_CONCURRENCY", "1")
    submit = load_function("SubmitFunction")
    stack.send_request({"request_id": "budget-first", "prompt": "a fox"})
    assert stack.deliver(submit) == []
    stack.send_request({"request_id": "budget-second", "prompt": "a fox"})
    stack.send_request({"request_id": "budget-third", "prompt": "a fox"})
    assert stack.deliver(submit) == []
    assert len(simulator.submissions()) == 2
    queue = stack.sqs.get_queue_attributes(QueueUrl=stack.request_queue_url, AttributeNames=["All"])["Attributes"]
    assert (queue["ApproximateNumberOfMessages"], queue["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")
    assert stack.events() == []
    held = [stack.job(request_id).get("held") for request_id in ("budget-second", "budget-third")]
    [reason] = [reason["S"] for reason in held if reason]
    assert reason == "the daily credit budget (60) has 0 credits left; it costs 30"
