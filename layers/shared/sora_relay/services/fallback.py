"""Fallback: a request whose model failed at no cost goes on to its next model, as a new attempt
waiting in the line (docs/contract.md, "Fallback"; docs/reliability.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import AttemptSummary, ErrorCode, EventError
from sora_relay.domain.fallback import failure_cost, may_fall_back
from sora_relay.domain.families import RequestRules, next_attempt
from sora_relay.domain.jobs import Job
from sora_relay.domain.ports import Metrics
from sora_relay.domain.provider import GenerationRecord
from sora_relay.observability import logger
from sora_relay.services.budget import CreditBudget
from sora_relay.services.line import Line


@dataclass(frozen=True)
class Fallbacks:
    line: Line
    budget: CreditBudget
    rules: RequestRules
    metrics: Metrics
    # The FallbackAfterCharged parameter: a failure that used credits may fall back too.
    after_charged: bool = False

    def after_failure(self, job: Job, record: GenerationRecord) -> Job | None:
        """The job on its next model, waiting in line, when its generation failed at no cost (or
        at a cost the operator allows); None, changing nothing, when it ends as it is."""
        if not may_fall_back(record, after_charged=self.after_charged):
            return None
        error = EventError(code=ErrorCode.GENERATION_FAILED, message=record.failure_message())
        moved = self._next(job, record.uuid, error, failure_cost(record))
        if moved is not None and record.used_credit is None:
            # The day counts what the failure cost, which its record does not state: nothing.
            self._settle_nothing(job)
        return moved

    def after_refusal(self, job: Job, message: str) -> Job | None:
        """The job on its next model when the provider refused its model (see `refuses_model`:
        nothing was made, so nothing was spent); None when it has no next."""
        return self._next(job, None, EventError(code=ErrorCode.PROVIDER_REJECTED, message=message), 0)

    def _next(self, job: Job, uuid: str | None, error: EventError, used: float | None) -> Job | None:
        request = job.claimed_request
        following = next_attempt(request, self.rules)
        if following is None:
            return None
        attempt = AttemptSummary(
            model=request.model, provider_uuid=uuid, outcome="failed", error=error, used_credit=used
        )
        moved = self.line.fall_back(job, following, attempt)
        logger.warning(
            "the model failed at no cost; trying the next",
            extra={"failed_model": request.model, "next_model": following.model, "error_message": error.message},
        )
        self.metrics.count("Fallbacks", model=request.model)
        return moved

    def _settle_nothing(self, job: Job) -> None:
        try:
            self.budget.settle_used(job, 0)
        except Exception:
            logger.exception("the daily budget could not follow a failure that cost nothing; it keeps the quote")
