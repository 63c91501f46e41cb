"""The daily credit budget: no submission that would take the day's estimated credits past it.

The provider states a generation's `estimated_credit` only when it accepts it, so the price
of a request is what the last accepted request of the same kind (model, duration,
resolution) was quoted; a kind not yet seen is priced at the dearest quote so far, and before
any quote at all, a request reserves all that is left of the day until its own quote comes
(others wait meanwhile). A reservation is made before the submission (atomically, so
concurrent submitters cannot both take the last room), corrected to the quote after it, and
given back when the provider did not take it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sora_relay.domain.ports import CreditLedger
from sora_relay.domain.request import VideoRequest

# A held request is looked at again this often (SQS delays a message by at most 15 minutes),
# and at the start of the next UTC day.
RECHECK_HELD = timedelta(minutes=15)
# Held only because a request of unknown price holds the rest of the day: its quote comes
# within seconds.
RECHECK_UNPRICED = timedelta(seconds=10)
# Held only because a request running at the same moment took the room this one saw: it may
# give it back within seconds (its provider did not take it, its reference was refused).
RECHECK_RACED = timedelta(seconds=10)


@dataclass(frozen=True)
class Reservation:
    day: date
    kind: str
    amount: float


@dataclass(frozen=True)
class NoRoom:
    """Held: look at the request again after `delay`. `ever` is False when the request's
    price is above the whole daily budget: no day will have room for it."""

    delay: timedelta
    reason: str
    ever: bool = True


def kind_of(request: VideoRequest) -> str:
    """What requests share a price: the model, the duration, and the resolution or mode (a
    Sora request's kind is what it was before there were families); an extension is a kind apart."""
    kind = f"{request.model}:{request.duration}:{request.resolution or request.mode}"
    return kind + (":extend" if request.extend else "")


@dataclass(frozen=True)
class CreditBudget:
    ledger: CreditLedger
    daily_limit: float | None  # None: no budget

    def reserve(self, request: VideoRequest, now: datetime) -> Reservation | NoRoom:
        """Room for this request today, taken; NoRoom when it would pass the budget."""
        day = now.astimezone(UTC).date()
        if self.daily_limit is None:
            return Reservation(day, kind_of(request), 0)
        ledger = self.ledger.day(day)
        left = self.daily_limit - ledger.spent
        quoted = ledger.quotes.get(kind_of(request))
        # A kind not quoted yet (a model the budget has not seen) is priced at the dearest quote
        # so far, and at most the whole day: a guess, which may hold it back (until a day has
        # that room), but never refuses it for good.
        guessed = min(max(ledger.quotes.values(), default=left), self.daily_limit)
        price = quoted if quoted is not None else guessed
        if quoted is not None and price > self.daily_limit:
            reason = f"its price ({price:g} credits) is above the whole daily credit budget ({self.daily_limit:g})"
            return NoRoom(hold_delay(now), reason, ever=False)
        if price <= 0 or not self.ledger.reserve(day, price, self.daily_limit):
            if not ledger.quotes:
                return NoRoom(RECHECK_UNPRICED, "waiting for the first quote, which holds the rest of the day")
            if 0 < price <= left:
                return NoRoom(RECHECK_RACED, f"another request took the day's last {left:g} credits first")
            budget = f"the daily credit budget ({self.daily_limit:g})"
            return NoRoom(hold_delay(now), f"{budget} has {max(left, 0):g} credits left; it costs {price:g}")
        return Reservation(day, kind_of(request), price)

    def reserved(self, request: VideoRequest, at: datetime, amount: float) -> Reservation:
        """The reservation `amount` made for `request` at `at` (kept on a job between invocations)."""
        return Reservation(at.astimezone(UTC).date(), kind_of(request), amount)

    def settle(self, reservation: Reservation, quoted: float | None) -> None:
        """The provider accepted it, quoting `quoted` credits: the day's spending follows the quote."""
        if self.daily_limit is None or quoted is None:
            return
        self.ledger.adjust(reservation.day, quoted - reservation.amount, (reservation.kind, quoted))

    def counted(self, reservation: Reservation, quoted: float | None) -> float:
        """What the day's spending counts for a request once `settle` has followed its quote."""
        if self.daily_limit is None:
            return 0
        return reservation.amount if quoted is None else quoted

    def settle_used(self, day: date, counted: float, used: float) -> None:
        """The provider stated what the generation used: the day's spending follows that, not
        the `counted` quote. Called once per job, after the job records it (a fault between the
        two leaves the quote counted, never the cost twice)."""
        if self.daily_limit is not None and used != counted:
            self.ledger.adjust(day, used - counted)

    def release(self, reservation: Reservation) -> None:
        """The provider did not take it: the reserved credits are the day's again."""
        if self.daily_limit is not None and reservation.amount:
            self.ledger.adjust(reservation.day, -reservation.amount)


def hold_delay(now: datetime) -> timedelta:
    """How long a held request waits before it is looked at again."""
    utc = now.astimezone(UTC)
    next_day = datetime.combine(utc.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return min(RECHECK_HELD, next_day - utc + timedelta(seconds=1))
