"""What the provider took: a submission recorded once accepted, and a submission whose answer
was lost found in the account's history before anything is sent again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sora_relay.domain.events import ErrorCode, ProviderSummary, iso_utc
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, Metrics, Provider
from sora_relay.domain.provider import GenerationRecord, ProviderUnavailable
from sora_relay.observability import logger
from sora_relay.services.budget import CreditBudget
from sora_relay.services.finisher import Finisher


@dataclass(frozen=True)
class Adopted:
    """The provider had taken it: the generation is now the job's, recorded as submitted."""


@dataclass(frozen=True)
class NotTaken:
    """The history shows the provider did not take it: `job`, its attempt cleared (saved) and
    its reservation given back, may be sent again."""

    job: Job


@dataclass(frozen=True)
class AwaitHistory:
    """The history cannot tell yet: look again after `delay`."""

    reason: str
    delay: timedelta


@dataclass(frozen=True)
class GaveUp:
    """The history could not tell within the bound (counted from the attempt): the job ended."""


LostSubmission = Adopted | NotTaken | AwaitHistory | GaveUp
# Candidates beyond this many are not each read in full: the history cannot tell them apart now.
MOST_CANDIDATES_READ = 5


@dataclass(frozen=True)
class Submissions:
    store: JobStore
    provider: Provider
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    budget: CreditBudget

    def find_lost(self, job: Job, receive_count: int, within: float) -> LostSubmission:
        """An earlier attempt may have been taken by the provider: adopt what it made, found in
        the account's history as the provider writes it (a generation since the attempt began
        that this request could have made and no other job owns), and record it as submitted.

        Never a guess: rows are lean and their prompt cut, so each candidate is read in full
        (its settings); where more than one remains, or the history cannot be read, it is read
        again later, until `max_wait` after the attempt, when the job ends saying why. The
        history is read within `within` seconds (at most the policy's `history_read_time`)."""
        now = self.clock()
        readable_at = job.attempt_began + self.policy.reconcile_delay
        if now < readable_at:
            return AwaitHistory("the history may not show the last attempt yet", readable_at - now)
        try:
            candidates = self._candidates(job, within)
        except ProviderUnavailable as error:
            delay = self.policy.retry_delay(receive_count, error.retry_after)
            return self._await_or_end(job, f"the account's history could not be read: {error}", delay)
        if not candidates:
            logger.info("the last attempt was not taken by the provider; submitting again")
            # Saved (conditionally on the version read) before the reservation goes back: of two
            # reconcilers, or a reconciler and a late delivery, only one moves on, and the
            # release itself lands once whoever makes it.
            cleared = job.not_taken(now)
            self.store.save(cleared)
            self.budget.release(job)
            self.metrics.count("AttemptsNotTaken")
            return NotTaken(cleared)
        if len(candidates) > 1:
            self.metrics.count("HistoryAmbiguous")
            reason = (
                f"the history shows {len(candidates)} generations this request could have made"
                " and cannot tell which is its own"
            )
            return self._await_or_end(job, reason, self.policy.reconcile_delay)
        [record] = candidates
        if record.settings_say(job.claimed_request) is None and self.store.generation_owner(record.uuid) is None:
            # Its settings are in words the catalogue does not map: neither "this one" nor "not".
            self.metrics.count("HistoryAmbiguous")
            reason = f"the generation found ({record.uuid}) states its settings in words the catalogue does not know"
            return self._await_or_end(job, reason, self.policy.reconcile_delay)
        if not self.store.own_generation(record.uuid, job.request_id):
            return AwaitHistory(
                "the generation found was taken by another request meanwhile", self.policy.reconcile_delay
            )
        logger.warning("a submission whose answer was lost was found and adopted", extra={"uuid": record.uuid})
        self.metrics.count("SubmissionsAdopted")
        self.record(job, record)
        return Adopted()

    def _candidates(self, job: Job, within: float) -> list[GenerationRecord]:
        """The generations since the attempt began that could be this request's: by the list's
        lean rows first (prompt as recorded, model), then each one no other job owns read in
        full (settings). One this request owns already (adopted, but not yet saved) is it."""
        request = job.claimed_request
        within = min(within, self.policy.history_read_time.total_seconds())
        if within <= 0:
            raise ProviderUnavailable("too little time left in this invocation to read the history")
        rows = self.provider.recent_generations(job.attempt_began - self.policy.provider_clock_skew, within)
        # A model tried before (a fallback's earlier attempt) made its own generation, never this one.
        earlier = {attempt.provider_uuid for attempt in job.attempts}
        unowned = []
        for row in (row for row in rows if row.uuid not in earlier and row.may_be(request)):
            owner = self.store.generation_owner(row.uuid)
            if owner == job.request_id:
                return [self._in_full(row)]
            if owner is None:
                unowned.append(row)
        if len(unowned) > MOST_CANDIDATES_READ:
            return unowned
        full = [self._in_full(row) for row in unowned]
        return [record for record in full if record.may_be(request)]

    def _in_full(self, row: GenerationRecord) -> GenerationRecord:
        """A history row as its full record (a list row states no settings, no expiry)."""
        return row if row.states_settings else self.provider.status(row.uuid)

    def _await_or_end(self, job: Job, reason: str, delay: timedelta) -> AwaitHistory | GaveUp:
        """Look again after `delay`; past the bound, end the job (its reservation stays spent:
        the provider may have taken it)."""
        now = self.clock()
        if now - job.attempt_began < self.policy.max_wait:
            return AwaitHistory(reason, delay)
        message = (
            f"the answer to a submission was lost, and the provider's history did not show within"
            f" {self.policy.max_wait_minutes} minutes of it which generation was this request's ({reason})"
        )
        self.finisher.fail(job, ErrorCode.TIMED_OUT, message, now)
        return GaveUp()

    def record(self, job: Job, record: GenerationRecord) -> None:
        """The job as submitted: announced (video.submitted), saved, its credits settled."""
        now = self.clock()
        provider = ProviderSummary(
            uuid=record.uuid,
            id=record.id,
            estimated_credit=record.estimated_credit,
            expired_at=iso_utc(record.expired_at) if record.expired_at else None,
        )
        submitted = job.submitted(
            now,
            provider,
            progress=record.status_percentage or 0,
            media_type=record.media_type,
            check_at=now + self.policy.poll_interval,
        )
        # Announced before it is saved, so that announcing costs no second write: should the
        # save not land, the job is taken over and adopted, and announced again (same event_id).
        submitted = self._announced(submitted)
        self.store.save(submitted)
        self.budget.settle(job, record.estimated_credit)
        logger.info("submitted", extra={"provider_uuid": record.uuid})
        self.metrics.count("JobsSubmitted", family=job.request.family if job.request else "unknown")
        if record.estimated_credit is not None:
            self.metrics.count("CreditsEstimated", record.estimated_credit)

    def _announced(self, job: Job) -> Job:
        """The job after its `video.submitted` went out, or as it was if that failed: then the
        next status check announces it (before any later event)."""
        try:
            return self.finisher.announce(job)
        except Exception:
            logger.exception("video.submitted could not be published; the next status check will")
            self.metrics.count("EventsDeferred")
            return job
