"""What a started request must have before anything is read or reserved for it: its earlier
video finished (an extension), references the stack may read, and room in the day's budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sora_relay.domain.events import ErrorCode
from sora_relay.domain.jobs import Job
from sora_relay.domain.ports import JobStore, ReferenceFiles
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget, NoRoom
from sora_relay.services.submit.extensions import Failed, NotYet, extended_generation
from sora_relay.services.submit.references import refused_reference
from sora_relay.services.waits import Wait, WaitFor


@dataclass(frozen=True)
class Go:
    price: float
    extends: str | None  # the earlier generation an extension continues


@dataclass(frozen=True)
class End:
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class Skip:
    """Its model's breaker is open: on to its fallback, without trying the model."""

    reason: str


Preflight = Go | End | Wait | Skip


def preflight(
    job: Job, store: JobStore, files: ReferenceFiles, budget: CreditBudget, breakers: Breakers, now: datetime
) -> Preflight:
    """Go with its price, end it (the earlier video failed, a reference is refused, its price is
    above the whole day's budget), skip its model for its fallback (the model's breaker is
    open), or wait in line for what holds it back."""
    request = job.claimed_request
    extends = None
    if request.extend is not None:
        match extended_generation(store, request.extend.request_id):
            case Failed(code, text):
                return End(code, text)
            case NotYet(reason):
                return Wait(WaitFor.EXTENSION, reason)
            case ready:
                extends = ready.uuid
    refused = refused_reference(files, request.references)
    if refused is not None:
        return End(ErrorCode.INVALID_REQUEST, refused)
    blocked = breakers.blocked(job)
    if blocked is None and not breakers.take_probe(job):
        blocked = f"another request probes model {request.model}, whose breaker is open"
    if blocked is not None:
        return Skip(blocked) if request.fallback else Wait(WaitFor.BREAKER, blocked)
    room = budget.room(request, now)
    if isinstance(room, NoRoom):
        if not room.ever:
            return End(ErrorCode.TIMED_OUT, f"not submitted: {room.reason}")
        return Wait(WaitFor.BUDGET, room.reason)
    return Go(room.amount, extends)
