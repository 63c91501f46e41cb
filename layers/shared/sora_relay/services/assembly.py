"""The one place the services are put together from their parts.

Lambda's wiring gives it adapters made from the environment; the tests give it plain fakes;
the benchmarks, their in-memory tables. Each service is made from the same parts the same
way, and a part is read only when a service that needs it is first made (a submit container
never makes the archive's S3 client), its module imported then too (a cold start loads its own
function's service only)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.families import RequestRules
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import (
    ArchiveQueue,
    BreakerStore,
    Clock,
    CreditLedger,
    EventPublisher,
    JobStore,
    LineStore,
    Metrics,
    Provider,
    ReferenceFiles,
    RequestQueue,
    SweepQueue,
    VideoArchive,
)
from sora_relay.services.breakers import Breakers
from sora_relay.services.budget import CreditBudget
from sora_relay.services.fallback import Fallbacks
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.waits import Waits

if TYPE_CHECKING:
    # The HTTP API's and the webhooks' ports: their models are built only where they are used.
    from sora_relay.domain.keys import KeyStore
    from sora_relay.domain.videos import KeyVideos, Objects
    from sora_relay.domain.webhooks import DeadLetters, WebhookSender
    from sora_relay.services.archive import ArchiveService
    from sora_relay.services.poll.service import PollService
    from sora_relay.services.submit.service import SubmitService
    from sora_relay.services.videos import VideoApi
    from sora_relay.services.webhooks import Webhooks


@dataclass(frozen=True)
class Tuning:
    """What the operator sets (template parameters), with the stack's defaults."""

    policy: Policy = field(default_factory=Policy)
    shards: int = 1
    daily_credit_budget: float | None = None  # None: no cap
    max_active_generations: int = 5
    progress_events: bool = False
    poll_concurrency: int = 16
    # How long one poll keeps sweeping for jobs coming due: less than the schedule's period.
    poll_window: timedelta = timedelta(seconds=50)
    # How many requests with reference files are fetched and sent at once (each holds its
    # files in memory while it is sent).
    reference_slots: int = 2
    rules: RequestRules = field(default_factory=lambda: RequestRules(Catalogue.bundled()))
    # The FallbackAfterCharged parameter: a failure that used credits may fall back too.
    fallback_after_charged: bool = False
    # The HTTP API: where its uploads go (s3://bucket/prefix/), each key's calls per minute.
    input_location: str = ""
    api_calls_per_minute: int = 120


class Parts(Protocol):
    """The ports and the tuning the services are made of (attributes or properties)."""

    @property
    def store(self) -> JobStore: ...
    @property
    def provider(self) -> Provider: ...
    @property
    def files(self) -> ReferenceFiles: ...
    @property
    def publisher(self) -> EventPublisher: ...
    @property
    def request_queue(self) -> RequestQueue: ...
    @property
    def archive_queue(self) -> ArchiveQueue: ...
    @property
    def sweep_queue(self) -> SweepQueue: ...
    @property
    def archive(self) -> VideoArchive: ...
    @property
    def ledger(self) -> CreditLedger: ...
    @property
    def line_store(self) -> LineStore: ...
    @property
    def breaker_store(self) -> BreakerStore: ...
    @property
    def keys(self) -> KeyStore: ...
    @property
    def key_videos(self) -> KeyVideos: ...
    @property
    def objects(self) -> Objects: ...
    @property
    def webhook_sender(self) -> WebhookSender: ...
    @property
    def webhook_key(self) -> Callable[[], bytes]: ...
    @property
    def webhook_dead_letters(self) -> DeadLetters: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def sleep(self) -> Callable[[float], None]: ...
    @property
    def tuning(self) -> Tuning: ...


class Services:
    """Each service, made once from `parts` when first asked for."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    @cached_property
    def finisher(self) -> Finisher:
        parts = self.parts
        return Finisher(parts.store, parts.publisher, parts.metrics, parts.tuning.policy)

    @cached_property
    def budget(self) -> CreditBudget:
        return CreditBudget(self.parts.ledger, self.parts.tuning.daily_credit_budget)

    @cached_property
    def breakers(self) -> Breakers:
        parts = self.parts
        return Breakers(parts.breaker_store, parts.metrics, parts.tuning.policy, parts.clock)

    @cached_property
    def line(self) -> Line:
        parts, tuning = self.parts, self.parts.tuning
        return Line(
            parts.store,
            parts.line_store,
            parts.request_queue,
            parts.metrics,
            tuning.policy,
            parts.clock,
            tuning.max_active_generations,
            Waits(parts.store, self.budget, self.breakers),
        )

    @cached_property
    def fallbacks(self) -> Fallbacks:
        parts, tuning = self.parts, self.parts.tuning
        return Fallbacks(
            self.line, self.budget, self.breakers, tuning.rules, parts.metrics, tuning.fallback_after_charged
        )

    @cached_property
    def submitter(self) -> SubmitService:
        from sora_relay.services.submit.service import SubmitService

        parts, tuning = self.parts, self.parts.tuning
        return SubmitService(
            store=parts.store,
            provider=parts.provider,
            files=parts.files,
            finisher=self.finisher,
            metrics=parts.metrics,
            policy=tuning.policy,
            clock=parts.clock,
            budget=self.budget,
            line=self.line,
            reference_slots=threading.BoundedSemaphore(tuning.reference_slots),
            rules=tuning.rules,
            fallbacks=self.fallbacks,
            breakers=self.breakers,
        )

    @cached_property
    def poller(self) -> PollService:
        from sora_relay.services.poll.service import PollService

        parts, tuning = self.parts, self.parts.tuning
        return PollService(
            store=parts.store,
            shards=tuning.shards,
            provider=parts.provider,
            request_queue=parts.request_queue,
            archive_queue=parts.archive_queue,
            sweep_queue=parts.sweep_queue,
            finisher=self.finisher,
            metrics=parts.metrics,
            policy=tuning.policy,
            clock=parts.clock,
            budget=self.budget,
            line=self.line,
            fallbacks=self.fallbacks,
            breakers=self.breakers,
            progress_events=tuning.progress_events,
            concurrency=tuning.poll_concurrency,
            window=tuning.poll_window,
            sleep=parts.sleep,
        )

    @cached_property
    def archiver(self) -> ArchiveService:
        from sora_relay.services.archive import ArchiveService

        parts = self.parts
        return ArchiveService(
            store=parts.store,
            archive=parts.archive,
            provider=parts.provider,
            finisher=self.finisher,
            metrics=parts.metrics,
            policy=parts.tuning.policy,
            clock=parts.clock,
            sleep=parts.sleep,
        )

    @cached_property
    def videos(self) -> VideoApi:
        from sora_relay.services.cancel import CancelService
        from sora_relay.services.videos import VideoApi

        parts, tuning = self.parts, self.parts.tuning
        return VideoApi(
            store=parts.store,
            keys=parts.keys,
            listing=parts.key_videos,
            objects=parts.objects,
            request_queue=parts.request_queue,
            canceler=CancelService(parts.store, self.finisher, parts.clock),
            budget=self.budget,
            rules=tuning.rules,
            policy=tuning.policy,
            clock=parts.clock,
            metrics=parts.metrics,
            input_location=tuning.input_location,
            calls_per_minute=tuning.api_calls_per_minute,
        )

    @cached_property
    def webhooks(self) -> Webhooks:
        from sora_relay.services.webhooks import Webhooks

        parts = self.parts
        return Webhooks(parts.webhook_sender, parts.webhook_key, parts.webhook_dead_letters, parts.clock, parts.metrics)
