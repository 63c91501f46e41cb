"""The daily credit budget: requests wait in the line, never fail and never go back on the queue,
once the day's credits are spent; each attempt's credits are counted exactly once."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from sora_relay.domain.jobs import JobState
from sora_relay.domain.ports import StaleJob
from sora_relay.domain.provider import Accepted, MaybeTaken, Rejected, RetryLater
from sora_relay.domain.request import VideoRequest
from sora_relay.services.budget import Price, kind_of
from sora_relay.services.submit.messages import Done, InboundMessage
from sora_relay.services.submit.submissions import Submissions

from ..support.fakes import START, record


def message(request_id: str, **fields: object) -> InboundMessage:
    return InboundMessage(
        message_id=f"m-{request_id}",
        body=json.dumps({"request_id": request_id, "prompt": f"a fox {request_id}", **fields}),
    )


def quoted(estimate: float) -> Accepted:
    return Accepted(record(status=1, estimated_credit=estimate))


def test_without_a_budget_nothing_is_counted(world) -> None:
    world.submitter.handle(message("free"))
    assert world.ledger.spent == {}


def test_request_within_the_budget_is_submitted_and_its_quote_counted(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [quoted(30)]
    assert world.submitter.handle(message("first")) == Done()
    day = world.ledger.day(START.date())
    assert (day.spent, day.quotes) == (30, {"sora-2:10:small": 30})


def test_request_that_would_pass_the_budget_waits_in_line_not_submitted(world) -> None:
    world.daily_credit_budget = 70
    world.provider.outcomes = [quoted(30), quoted(30), quoted(30)]
    for request_id in ("one", "two", "three"):
        assert world.submitter.handle(message(request_id)) == Done()
    assert len(world.provider.submitted) == 2
    assert world.ledger.day(START.date()).spent == 60
    assert world.store.get("three").waiting
    assert world.publisher.finals == []


def test_request_waiting_for_the_budget_sends_no_message_and_says_why(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)]
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("waits"))
    job = world.store.get("waits")
    assert (job.state, job.waiting, job.held) == (
        JobState.RECEIVED,
        True,
        "the daily credit budget (10) has 0 left; it costs 10",
    )
    assert world.request_queue.resent == []
    assert world.metrics.counts["RequestsHeld"] == 1


def test_a_spent_day_keeps_the_whole_line_waiting_and_in_order_without_a_message(world) -> None:
    world.daily_credit_budget, world.places = 40, 100
    world.provider.outcomes = [quoted(30)]
    world.submitter.handle(message("paid"))  # 10 credits left
    for number in range(13):
        world.submitter.handle(message(f"w{number}", priority="low" if number % 2 else "normal"))
    world.clock.advance(timedelta(minutes=1))
    world.poller.tend_line()
    world.poller.sweep()
    waiting = [job for job in world.store.jobs.values() if job.waiting]
    assert len(waiting) == 13
    assert world.request_queue.resent == []
    assert len(world.provider.submitted) == 1
    assert "the daily credit budget (40) has 10 left" in world.waiting.state.held_by


def test_raised_budget_starts_the_waiting_requests_in_priority_order(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)] * 4
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("normal-1"))
    world.submitter.handle(message("low-1", priority="low"))
    world.submitter.handle(message("high-1", priority="high"))
    world.daily_credit_budget = 40
    world.poller.tend_line()
    assert world.deliver_starts() == ["high-1", "normal-1", "low-1"]
    assert world.ledger.day(START.date()).spent == 40


def test_waiting_request_starts_when_the_utc_day_turns(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10), quoted(10)]
    world.submitter.handle(message("today"))
    world.submitter.handle(message("tomorrow"))
    world.clock.advance(timedelta(days=1))
    world.poller.tend_line()
    assert world.deliver_starts() == ["tomorrow"]
    assert world.store.get("tomorrow").provider is not None
    assert world.ledger.spent[(START + timedelta(days=1)).date()] == 10


def test_request_priced_above_the_whole_daily_budget_ends_at_once(world) -> None:
    world.daily_credit_budget = 50
    world.ledger.quoted["sora-2-pro:15:large"] = 120
    assert world.submitter.handle(message("dear", model="sora-2-pro", duration=15, resolution="large")) == Done()
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert "its price (120 credits) is above the whole daily credit budget (50)" in event.error.message
    assert world.provider.submitted == []
    assert world.request_queue.resent == []


def test_unseen_kind_is_priced_at_the_days_dearest_quote(world) -> None:
    world.daily_credit_budget = 150
    world.provider.outcomes = [quoted(100)]
    world.submitter.handle(message("pro", model="sora-2-pro"))
    world.submitter.handle(message("cheap-kind", resolution="large"))
    assert [r.request_id for r in world.provider.submitted] == ["pro"]


def test_first_unpriced_request_holds_the_rest_until_its_quote(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 504"), quoted(30)]
    world.submitter.handle(message("first"))  # its quote unknown: it holds the rest of the day
    assert world.submitter.handle(message("meanwhile")) == Done()
    assert [r.request_id for r in world.provider.submitted] == ["first"]
    assert world.store.get("meanwhile").held == "waiting for the first quote, which holds the rest of the day"


def test_refused_submission_gives_its_credits_back(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [quoted(40), Rejected(400, "bad prompt")]
    world.submitter.handle(message("ok"))
    world.submitter.handle(message("refused"))
    assert world.ledger.day(START.date()).spent == 40


def test_submission_to_retry_gives_its_credits_back(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [quoted(40), RetryLater("busy")]
    world.submitter.handle(message("ok"))
    world.submitter.handle(message("later"))
    assert world.store.get("later").waiting  # back in line
    assert world.ledger.day(START.date()).spent == 40


def test_duplicate_of_a_submitted_request_spends_nothing(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [quoted(40)]
    world.submitter.handle(message("once"))
    world.submitter.handle(message("once"))
    assert world.ledger.day(START.date()).spent == 40


def test_request_that_loses_the_last_room_to_one_running_alongside_waits_in_line(world) -> None:
    world.daily_credit_budget = 30
    world.ledger.quoted["sora-2:10:small"] = 30
    taken = world.ledger.reserve

    def meanwhile(attempt_id: str, day, amount: float, limit: float) -> bool:
        world.ledger.spent[day] = 30  # another request reserved the day's last room just now
        return taken(attempt_id, day, amount, limit)

    world.ledger.reserve = meanwhile
    assert world.submitter.handle(message("second")) == Done()
    job = world.store.get("second")
    assert world.provider.submitted == []
    assert (job.waiting, job.attempt_started_at, world.request_queue.resent) == (True, None, [])
    assert world.waiting.state.holders == frozenset()


def test_model_the_budget_has_not_seen_is_never_refused_for_good_on_a_guessed_price(world) -> None:
    world.daily_credit_budget = 50
    world.ledger.quoted["sora-2-pro:15:large"] = 120  # dearer than the whole day, but another kind's
    body = {"request_id": "veo-1", "prompt": "a lighthouse", "model": "veo-3.1-fast"}
    assert world.submitter.handle(InboundMessage("m-1", json.dumps(body))) == Done()
    assert world.publisher.finals == []
    assert world.store.get("veo-1").held is None  # a day with nothing spent has room for its guess
    assert world.provider.submitted[-1].model == "veo-3.1-fast"


def test_a_kind_quoted_nothing_always_has_room(world) -> None:
    world.daily_credit_budget = 10
    world.ledger.spent[START.date()] = 10  # the day is spent
    world.ledger.quoted["sora-2:10:small"] = 0
    assert world.budget.room(VideoRequest.model_validate({"prompt": "a fox"}), START) == Price(0)


def test_every_field_that_changes_the_price_is_in_the_kind() -> None:
    fast = VideoRequest.model_validate({"prompt": "a fox", "model": "seedance-2", "family": "seedance", "mode": "fast"})
    pro = fast.model_copy(update={"mode": "pro"})
    assert kind_of(fast) != kind_of(pro)
    sora = VideoRequest.model_validate({"prompt": "a fox", "duration": 10, "resolution": "small"})
    assert kind_of(sora) == "sora-2:10:small"  # as quotes were kept before


def test_a_reservation_is_given_back_on_the_day_it_was_taken(world) -> None:
    world.daily_credit_budget = 100
    world.ledger.quoted["sora-2:10:small"] = 30
    world.clock.now = datetime(2026, 11, 23, 23, 59, 50, tzinfo=UTC)
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message("late"))
    world.clock.advance(timedelta(minutes=5))  # the next UTC day: the history shows nothing taken
    world.poller.sweep()
    assert world.ledger.spent[date_of("2026-11-23")] == 0
    assert world.ledger.spent.get(date_of("2026-11-24"), 0) == 0


def date_of(text: str):
    return datetime.fromisoformat(text).date()


def test_an_attempt_reconciled_twice_gives_its_credits_back_once(world) -> None:
    world.daily_credit_budget = 100
    world.ledger.quoted["sora-2:10:small"] = 30
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(message("ad-1"))
    stale = world.store.get("ad-1")  # as a poller reads it from a stale index copy
    world.clock.advance(timedelta(minutes=5))
    world.submitter.handle(InboundMessage("m-again", message("ad-1").body, receive_count=2))  # not taken: sent again
    assert world.store.get("ad-1").state is JobState.SUBMITTED
    late = Submissions(
        world.store, world.provider, world.finisher, world.metrics, world.policy, world.clock, world.budget
    )
    with pytest.raises(StaleJob):
        late.find_lost(stale, 1, 30.0)  # a second reconciler, late: the job moved on
    assert world.ledger.spent[START.date()] == 30  # the running generation's quote, still counted


def test_a_fault_after_the_history_showed_nothing_taken_gives_back_once(world) -> None:
    world.daily_credit_budget = 100
    world.ledger.quoted["sora-2:10:small"] = 30
    body = {"prompt": "a fox ad-1", "model": "kling-video-2-6", "ref_images": ["s3://in/a.png"]}
    world.ledger.quoted["kling-video-2-6:5:standard"] = 30
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 502")]
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "ad-1", **body})))
    world.clock.advance(timedelta(minutes=5))
    world.files.failures["s3://in/a.png"] = ConnectionResetError("the read was cut")  # a raw transport error
    redelivered = InboundMessage("m-2", json.dumps({"request_id": "ad-1", **body}), receive_count=2)
    with pytest.raises(ConnectionResetError):
        world.submitter.handle(redelivered)  # the record fails; its message comes again
    world.files.failures.clear()
    world.clock.advance(world.policy.claim_lease)  # the dead invocation's claim runs out
    world.submitter.handle(InboundMessage("m-3", redelivered.body, receive_count=3))
    assert world.ledger.spent[START.date()] == 30  # one generation running, counted once
