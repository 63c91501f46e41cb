"""The credit budget in the jobs table: each attempt's reservation an item of its own, every
change to a day made once with it, and the submit function keeping requests in line once the
budget is spent."""

from datetime import date

import boto3
import pytest

from sora_relay.adapters.credit_ledger import DynamoCreditLedger
from sora_relay.domain.ports import DayLedger
from sora_relay.wiring import AWS_CONFIG

from ..support.aws import answers_lost, load_function

DAY = date(2026, 11, 23)


@pytest.fixture
def client(stack):
    return boto3.client("dynamodb", config=AWS_CONFIG)


@pytest.fixture
def ledger(stack, client) -> DynamoCreditLedger:
    return DynamoCreditLedger(client, stack.table_name)


def spent(ledger: DynamoCreditLedger, day: date = DAY) -> float:
    return ledger.day(day).spent


def test_reservations_within_the_limit_are_added(ledger) -> None:
    assert ledger.reserve("a@1", DAY, 30, limit=100)
    assert ledger.reserve("b@1", DAY, 70, limit=100)
    assert spent(ledger) == 100


def test_reservation_past_the_limit_changes_nothing(ledger) -> None:
    assert ledger.reserve("a@1", DAY, 60, limit=100)
    assert not ledger.reserve("b@1", DAY, 41, limit=100)
    assert spent(ledger) == 60


def test_reservation_made_again_is_made_once(ledger) -> None:
    assert ledger.reserve("a@1", DAY, 30, limit=100)
    assert ledger.reserve("a@1", DAY, 30, limit=100)
    assert spent(ledger) == 30


def test_reservation_whose_answer_was_lost_is_made_once_by_the_sdks_retry(ledger, client) -> None:
    carried_out = answers_lost(client, "TransactWriteItems")
    assert ledger.reserve("a@1", DAY, 30, limit=100)
    assert len(carried_out) == 1
    assert spent(ledger) == 30


def test_release_whose_answer_was_lost_gives_back_once(ledger, client) -> None:
    ledger.reserve("a@1", DAY, 30, limit=100)
    ledger.reserve("b@1", DAY, 30, limit=100)
    answers_lost(client, "TransactWriteItems")
    ledger.release("a@1")
    assert spent(ledger) == 30


def test_release_made_twice_gives_back_once(ledger) -> None:
    ledger.reserve("a@1", DAY, 30, limit=100)
    ledger.reserve("b@1", DAY, 30, limit=100)
    ledger.release("a@1")
    ledger.release("a@1")  # a second reconciler, or the same after a crash
    assert spent(ledger) == 30


def test_release_of_an_attempt_that_reserved_nothing_changes_nothing(ledger) -> None:
    ledger.reserve("a@1", DAY, 30, limit=100)
    ledger.release("never-reserved@1")
    assert spent(ledger) == 30


def test_quote_then_use_are_each_counted_once_on_the_reservations_day(ledger) -> None:
    ledger.reserve("a@1", DAY, 100, limit=100)
    ledger.count("a@1", 75, used=False)
    ledger.count("a@1", 75, used=False)
    assert spent(ledger) == 75
    ledger.count("a@1", 60, used=True)
    ledger.count("a@1", 80, used=False)  # a quote coming late never undoes what was used
    assert spent(ledger) == 60
    assert spent(ledger, date(2026, 11, 24)) == 0


def test_a_released_attempt_counts_nothing_more(ledger) -> None:
    ledger.reserve("a@1", DAY, 30, limit=100)
    ledger.release("a@1")
    ledger.count("a@1", 30, used=False)
    assert spent(ledger) == 0


def test_quotes_outlive_the_day(ledger) -> None:
    ledger.quote("sora-2-pro:10:small", 75)
    assert ledger.day(date(2026, 11, 24)) == DayLedger(spent=0, quotes={"sora-2-pro:10:small": 75})


def test_budget_items_expire_and_are_not_jobs(ledger, stack) -> None:
    ledger.reserve("a@1", DAY, 10, limit=100)
    for key in ("budget#2026-11-23", "budget#attempt#a@1"):
        item = stack.job(key)
        assert "state" not in item
        assert int(item["expires_at"]["N"]) > 0


def test_submit_function_keeps_requests_in_line_once_the_budget_is_spent(stack, simulator, monkeypatch) -> None:
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
    assert (queue["ApproximateNumberOfMessages"], queue["ApproximateNumberOfMessagesDelayed"]) == ("0", "0")
    assert stack.events() == []
    held = [stack.job(request_id).get("held") for request_id in ("budget-second", "budget-third")]
    [reason] = [reason["S"] for reason in held if reason]
    assert reason == "the daily credit budget (60) has 0 left; it costs 30"
