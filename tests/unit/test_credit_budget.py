"""The daily credit budget: requests wait, never fail, once the day's credits are spent."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sora_relay.domain.jobs import JobState
from sora_relay.domain.ports import DayLedger
from sora_relay.domain.provider import Accepted, Rejected, RetryLater
from sora_relay.domain.request import VideoRequest
from sora_relay.services.budget import RECHECK_HELD, RECHECK_RACED, RECHECK_UNPRICED, Reservation, hold_delay
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.fakes import START, MemoryLedger, World, record


def message(request_id: str, **fields: object) -> InboundMessage:
    return InboundMessage(
        message_id=f"m-{request_id}", body=json.dumps({"request_id": request_id, "prompt": "a fox", **fields})
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


def test_request_that_would_pass_the_budget_is_held_not_submitted(world) -> None:
    world.daily_credit_budget = 70
    world.provider.outcomes = [quoted(30), quoted(30), quoted(30)]
    for request_id in ("one", "two", "three"):
        assert world.submitter.handle(message(request_id)) == Done()
    assert len(world.provider.submitted) == 2
    assert world.ledger.day(START.date()).spent == 60
    assert world.publisher.finals == []


def test_held_request_goes_back_on_the_queue_under_its_id(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)]
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("waits", model="sora-2"))
    assert [request_id for request_id, _ in world.request_queue.resent] == ["waits"]
    assert world.request_queue.delays == [RECHECK_HELD]
    assert world.metrics.counts["RequestsHeld"] == 1


def test_held_request_has_a_job_that_says_why(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)]
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("waits"))
    job = world.store.get("waits")
    assert job.state is JobState.RECEIVED
    assert job.held == "the daily credit budget (10) has 0 credits left; it costs 10"
    assert job.lease_until is None


def test_request_held_past_the_longest_hold_times_out_saying_why(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)]
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("waits"))
    world.clock.advance(world.policy.max_hold)
    world.ledger.spent[world.clock.now.date()] = 10  # every day's budget spent
    assert world.submitter.handle(message("waits")) == Done()
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert event.error.message.startswith("not submitted: held back for 48 hours: the daily credit budget")
    assert len(world.provider.submitted) == 1


def test_held_request_whose_message_is_lost_times_out_after_the_longest_hold(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10)]
    world.submitter.handle(message("paid"))
    world.submitter.handle(message("waits"))
    world.store.jobs.pop("paid")
    world.clock.advance(world.policy.max_wait + timedelta(hours=1))
    assert world.poller.sweep().outcomes == {Outcome.REQUEUED: 1}  # held, so not past the maximum wait
    world.clock.advance(world.policy.max_hold)
    assert world.poller.sweep().outcomes == {Outcome.FAILED: 1}
    [event] = world.publisher.finals
    assert "held back for 48 hours: the daily credit budget" in event.error.message


def test_request_priced_above_the_whole_daily_budget_ends_at_once(world) -> None:
    world.daily_credit_budget = 50
    world.ledger.quotes["sora-2-pro:15:large"] = 120
    assert world.submitter.handle(message("dear", model="sora-2-pro", duration=15, resolution="large")) == Done()
    [event] = world.publisher.finals
    assert event.error.code == "timed_out"
    assert "its price (120 credits) is above the whole daily credit budget (50)" in event.error.message
    assert world.provider.submitted == []
    assert world.request_queue.resent == []


def test_held_request_is_submitted_the_next_day(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10), quoted(10)]
    world.submitter.handle(message("today"))
    world.submitter.handle(message("tomorrow"))
    world.clock.advance(timedelta(days=1))
    _, request = world.request_queue.resent[0]
    assert (
        world.submitter.handle(
            InboundMessage("m-again", json.dumps({**request.as_message(), "request_id": "tomorrow"}))
        )
        == Done()
    )
    assert world.store.get("tomorrow").provider is not None
    assert len(world.provider.submitted) == 2


def test_held_request_is_submitted_once_the_budget_is_raised(world) -> None:
    world.daily_credit_budget = 10
    world.provider.outcomes = [quoted(10), quoted(10)]
    world.submitter.handle(message("first"))
    world.submitter.handle(message("second"))
    world.daily_credit_budget = 20
    assert world.submitter.handle(message("second")) == Done()
    assert world.ledger.day(START.date()).spent == 20
    assert world.store.get("second").held is None


def test_unseen_kind_is_priced_at_the_days_dearest_quote(world) -> None:
    world.daily_credit_budget = 150
    world.provider.outcomes = [quoted(100)]
    world.submitter.handle(message("pro", model="sora-2-pro"))
    world.submitter.handle(message("cheap-kind", resolution="large"))
    assert [r.request_id for r in world.provider.submitted] == ["pro"]


def test_first_unpriced_request_holds_the_rest_until_its_quote(world) -> None:
    world.daily_credit_budget = 100
    world.provider.outcomes = [quoted(30)]
    first = world.budget.reserve(VideoRequest.model_validate({"prompt": "elsewhere"}), START)
    assert world.submitter.handle(message("meanwhile")) == Done()
    assert world.provider.submitted == []
    assert isinstance(first, Reservation)
    assert world.request_queue.delays == [RECHECK_UNPRICED]
    world.budget.settle(first, 30)
    assert world.submitter.handle(message("meanwhile")) == Done()
    assert world.ledger.spent[START.date()] == 60


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


def test_hold_ends_at_the_start_of_the_next_utc_day() -> None:
    late = datetime(2026, 11, 23, 23, 55, tzinfo=UTC)
    assert hold_delay(late) == timedelta(minutes=5, seconds=1)
    assert hold_delay(datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) == RECHECK_HELD


@dataclass
class TakenMeanwhile(MemoryLedger):
    """Another request reserves `meanwhile` credits just after this one reads the day."""

    meanwhile: float = 0

    def day(self, day: date) -> DayLedger:
        seen = super().day(day)
        if self.meanwhile:
            self.adjust(day, self.meanwhile)
            self.meanwhile = 0
        return seen


def test_request_that_loses_the_last_room_to_one_running_alongside_is_looked_at_again_soon() -> None:
    ledger = TakenMeanwhile(quotes={"sora-2:10:small": 30}, meanwhile=30)
    world = World(daily_credit_budget=30, ledger=ledger)
    assert world.submitter.handle(message("second")) == Done()
    assert world.provider.submitted == []
    assert world.request_queue.delays == [RECHECK_RACED]


def test_model_the_budget_has_not_seen_is_never_refused_for_good_on_a_guessed_price(world) -> None:
    world.daily_credit_budget = 50
    world.ledger.quotes["sora-2-pro:15:large"] = 120  # dearer than the whole day, but another kind's
    body = {"request_id": "veo-1", "prompt": "a lighthouse", "model": "veo-3.1-fast"}
    assert world.submitter.handle(InboundMessage("m-1", json.dumps(body))) == Done()
    assert world.publisher.finals == []
    assert world.store.get("veo-1").held is None  # a day with nothing spent has room for its guess
    assert world.provider.submitted[-1].model == "veo-3.1-fast"
