"""The daily credit budget: no submission that would take the day's estimated credits past it.

The provider states a generation's `estimated_credit` only when it accepts it, so the price
of a request is what the last accepted request of the same kind (every field that changes the
price) was quoted; a kind not yet seen is priced at the dearest quote so far, and before any
quote at all, a request is priced at all that is left of the day until its own quote comes
(others wait meanwhile).

A reservation's life, in one place: the line asks `room` before a request takes a place (a
read); the attempt, once saved, `reserve`s its price (atomically, so concurrent submitters
cannot both take the last room); the provider's quote, then what the generation used, are
`settle`d onto it; an attempt the provider did not take is `release`d. Each is kept under the
attempt's id, on the day it was reserved, and lands once however often it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sora_relay.domain.jobs import Job
from sora_relay.domain.ports import CreditLedger
from sora_relay.domain.request import VideoRequest


@dataclass(frozen=True)
class Price:
    amount: float


@dataclass(frozen=True)
class NoRoom:
    """No room today. `ever` is False when the request's price is above the whole daily
    budget: no day will have room for it."""

    reason: str
    ever: bool = True


def kind_of(request: VideoRequest) -> str:
    """What requests share a price: the model and every field that changes the price (a Sora or
    Veo request's kind is `model:duration:resolution`, as before there were modes)."""
    settings = [request.duration, request.resolution or request.mode]
    if request.resolution and request.mode:
        settings.append(request.mode)
    kind = ":".join([request.model, *(str(value) for value in settings)])
    return kind + (":extend" if request.extend else "")


@dataclass(frozen=True)
class CreditBudget:
    ledger: CreditLedger
    daily_limit: float | None  # None: no budget

    def room(self, request: VideoRequest, now: datetime) -> Price | NoRoom:
        """Whether today has room for this request now, and at what price (nothing is taken)."""
        if self.daily_limit is None:
            return Price(0)
        ledger = self.ledger.day(now.astimezone(UTC).date())
        left = self.daily_limit - ledger.spent
        quoted = ledger.quotes.get(kind_of(request))
        if quoted is not None:
            if quoted > self.daily_limit:
                reason = f"its price ({quoted:g} credits) is above the whole daily credit budget ({self.daily_limit:g})"
                return NoRoom(reason, ever=False)
            if quoted <= left:
                return Price(quoted)  # a free kind (quoted 0) always has room
            return NoRoom(
                f"the daily credit budget ({self.daily_limit:g}) has {max(left, 0):g} left; it costs {quoted:g}"
            )
        if not ledger.quotes:
            # Before any quote, the first request reserves the rest of the day until its own comes.
            if left > 0:
                return Price(left)
            return NoRoom("waiting for the first quote, which holds the rest of the day")
        # A kind not quoted yet (a model the budget has not seen) is priced at the dearest quote
        # so far, and at most the whole day: a guess, which may hold it back (until a day has
        # that room), but never refuses it for good.
        guessed = min(max(ledger.quotes.values()), self.daily_limit)
        if guessed <= left:
            return Price(guessed)
        budget = f"the daily credit budget ({self.daily_limit:g})"
        return NoRoom(f"{budget} has {max(left, 0):g} left; a request of a kind not yet quoted is priced {guessed:g}")

    def reserve(self, attempt: Job) -> bool:
        """The attempt's price taken from its day (the attempt saved first, so that whoever takes
        the job over can give it back); False, taking nothing, when another took the room first."""
        if self.daily_limit is None:
            return True
        day = attempt.attempt_began.astimezone(UTC).date()
        return self.ledger.reserve(attempt.claimed_attempt_id, day, attempt.attempt_reserved, self.daily_limit)

    def settle(self, job: Job, quoted: float | None) -> None:
        """The provider took the attempt, quoting `quoted` credits: the day counts the quote, and
        the quote prices its kind (for the day's budget, and for the API keys' daily credits)."""
        if quoted is None or job.attempt_id is None:
            return
        if self.daily_limit is not None:
            self.ledger.count(job.attempt_id, quoted, used=False)
        if self.daily_limit is not None or job.key is not None:
            self.ledger.quote(kind_of(job.claimed_request), quoted)

    def price(self, request: VideoRequest) -> float:
        """What a request is priced at before the provider quotes it: the latest quote of its
        kind, else the dearest quote so far, else nothing (no request was quoted yet)."""
        quotes = self.ledger.quotes()
        return quotes.get(kind_of(request), max(quotes.values(), default=0))

    def settle_used(self, job: Job, used: float) -> None:
        """The provider stated what the generation used: the day counts that, not the quote."""
        if self.daily_limit is not None and job.attempt_id is not None:
            self.ledger.count(job.attempt_id, used, used=True)

    def release(self, attempt: Job) -> None:
        """The provider did not take the attempt: its credits are its day's again (called once
        the job no longer shows the attempt open; safe to repeat)."""
        if self.daily_limit is not None and attempt.attempt_id is not None:
            self.ledger.release(attempt.attempt_id)
