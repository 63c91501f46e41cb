"""Fallback: a request whose model failed at no cost goes on to its next model, as a new attempt
waiting in the line (docs/contract.md, "Fallback"; docs/reliability.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import AttemptSummary, ErrorCode, EventError
from sora_relay.domain.fallback import failure_cost, may_fall_back, provider_fault, refuses_model
from sora_relay.domain.families import RequestRules, next_attempt
from sora_relay.domain.jobs import Job
from sora_relay.domain.ports import Metrics
from sora_relay.domain.provider import GenerationRecord
from sora_relay.observability import logger
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget
from sora_relay.services.line import Line


@dataclass(frozen=True)
class Fallbacks:
    line: Line
    budget: CreditBudget
    breakers: Breakers
    rules: RequestRules
    metrics: Metrics
    # The FallbackAfterCharged parameter: a failure that used credits may fall back too.
    after_charged: bool = False

    def after_failure(self, job: Job, record: GenerationRecord) -> Job | None:
        """The job on its next model, waiting in line, when its generation failed at no cost (or
        at a cost the operator allows); None, changing nothing, when it ends as it is. A failure
        that was not the request's fault counts against its model's breaker either way."""
        if provider_fault(record):
            self.breakers.failed(job.claimed_request.model, record.failure_message())
        if not may_fall_back(record, after_charged=self.after_charged):
            return None
        error = EventError(code=ErrorCode.GENERATION_FAILED, message=record.failure_message())
        cost = failure_cost(record)
        moved = self._next(job, record.uuid, error, cost)
        if moved is not None and cost == 0 and record.used_credit is None:
            # The day counts what the failure cost, which its record does not state: nothing.
            self._settle_nothing(job)
        return moved

    def after_refusal(self, job: Job, status_code: int, reason: str) -> str | None:
        """None when the provider refused the job's model (see `refuses_model`: nothing was made,
        so nothing was spent) and it went on to its next; otherwise why it ends."""
        model = job.claimed_request.model
        if not refuses_model(reason, model):
            return f"the provider refused the request (HTTP {status_code}): {reason}"
        message = f"the provider refused model {model} (HTTP {status_code}): {reason}"
        moved = self._next(job, None, EventError(code=ErrorCode.PROVIDER_REJECTED, message=message), 0)
        return None if moved is not None else message

    def skip(self, job: Job, reason: str) -> Job | None:
        """The job on its next model without trying its own, whose breaker is open; None when it
        has no next (then it waits)."""
        return self._next(job, None, EventError(code=ErrorCode.PROVIDER_REJECTED, message=reason), 0, tried=False)

    def _next(
        self, job: Job, uuid: str | None, error: EventError, used: float | None, *, tried: bool = True
    ) -> Job | None:
        request = job.claimed_request
        following = next_attempt(request, self.rules)
        if following is None:
            return None
        outcome = "failed" if tried else "skipped"
        attempt = AttemptSummary(
            model=request.model, provider_uuid=uuid, outcome=outcome, error=error, used_credit=used
        )
        moved = self.line.fall_back(job, following, attempt)
        logger.warning(
            "the model failed at no cost, or its breaker is open; trying the next",
            extra={"failed_model": request.model, "next_model": following.model, "error_message": error.message},
        )
        self.metrics.count("Fallbacks", model=request.model)
        return moved

    def _settle_nothing(self, job: Job) -> None:
        try:
            self.budget.settle_used(job, 0)
        except Exception:
            logger.exception("the daily budget could not follow a failure that cost nothing; it keeps the quote")
