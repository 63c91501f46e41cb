"""A breaker per model: a model whose generations keep failing through no fault of the requests
(5xx at submit, provider-side failures, generations that never start) is not tried until one
probe request gets a video from it after a cool-down. Its requests go to their fallback at once,
or wait in the line, spending nothing (docs/reliability.md, "A breaker per model")."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sora_relay.domain.events import iso_utc
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import BreakerState, BreakerStore, Clock, Metrics
from sora_relay.observability import logger

# A model's state is read at most this often per container for the line's fill (each waiting
# request it looks at would read it otherwise): stale by seconds, a closed breaker lets the fill
# start a request the submitter then sends to its fallback, an open one holds a request a little
# longer. The submitter reads it afresh before each attempt.
_FRESH_FOR = timedelta(seconds=10)


@dataclass(frozen=True)
class Breakers:
    store: BreakerStore
    metrics: Metrics
    policy: Policy
    clock: Clock
    _seen: dict[str, tuple[datetime, BreakerState]] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def blocked(self, job: Job) -> str | None:
        """Why the job's model may not be tried by it now (its breaker is open, and it is not, or
        may not become, its probe); None when it may."""
        model = job.claimed_request.model
        state = self._state(model)
        if state.opened_at is None or state.probe == job.request_id:
            return None
        now = self.clock()
        cooled_at = state.opened_at + self.policy.breaker_cool_down
        probing = state.probe is not None and state.probe_until is not None and state.probe_until > now
        if now >= cooled_at and not probing:
            return None  # it may probe: `take_probe` decides, just before the attempt
        after = "once a probe request succeeds" if probing else f"from {iso_utc(cooled_at)}, with one probe request"
        return f"model {model} failed {state.failures} times in a row (its breaker is open); it is tried again {after}"

    def take_probe(self, job: Job) -> bool:
        """True when the job may try its model: its breaker is closed, or the job is its probe now."""
        model = job.claimed_request.model
        # Read afresh, right before the attempt: a breaker another container opened a moment ago
        # keeps this request from trying the model (one read per request started).
        if self._state(model, fresh=True).opened_at is None:
            return True
        now = self.clock()
        # A probe holds the model for one cool-down at most: a probe whose request failed on its
        # own account (or is slow) gives way to the next then, at most one a cool-down.
        until = now + self.policy.breaker_cool_down
        taken = self.store.take_probe(model, job.request_id, now - self.policy.breaker_cool_down, now, until)
        if taken:
            logger.info("probing a model whose breaker is open", extra={"model": model})
        return taken

    def failed(self, model: str, reason: str) -> None:
        """A failure that was not the request's fault. Never raises: a breaker that cannot be
        written only means the next requests try the model too."""
        try:
            state = self.store.count_failure(model, self.clock(), self.policy.breaker_failures)
        except Exception:
            logger.exception("a model's failure could not be counted", extra={"model": model})
            return
        self._remember(model, state)
        self.metrics.count("ModelFailures", model=model)
        if state.failures == self.policy.breaker_failures:
            logger.error("a model's breaker opened", extra={"model": model, "reason": reason})
            self.metrics.count("BreakersOpened", model=model)  # the alarm's: one contributor per model

    def succeeded(self, model: str) -> None:
        """A generation of the model made its video: its breaker closes. Never raises. (Read as
        this container last saw it: failures another counted in the last seconds may stand.)"""
        state = self._state(model)
        if state.failures == 0 and state.opened_at is None:
            return
        try:
            self.store.reset(model)
        except Exception:
            logger.exception("a model's breaker could not be closed", extra={"model": model})
            return
        self._remember(model, BreakerState())
        if state.opened_at is not None:
            logger.info("a model's breaker closed", extra={"model": model})

    def _state(self, model: str, *, fresh: bool = False) -> BreakerState:
        now = self.clock()
        with self._lock:
            seen = self._seen.get(model)
        if seen is not None and not fresh and now - seen[0] < _FRESH_FOR:
            return seen[1]
        try:
            state = self.store.read(model)
        except Exception:
            logger.exception("a model's breaker could not be read; taken as closed", extra={"model": model})
            return BreakerState()
        self._remember(model, state)
        return state

    def _remember(self, model: str, state: BreakerState) -> None:
        with self._lock:
            self._seen[model] = (self.clock(), state)
