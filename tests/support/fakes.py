"""Plain fakes of the domain's ports: enough behaviour to be honest, nothing more."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sora_relay.adapters.dynamodb import shard_of
from sora_relay.domain.delivered import VideoFacts
from sora_relay.domain.events import EventType, ThumbnailObject, VideoEvent, VideoObject
from sora_relay.domain.families import RequestRules
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import ArchivedVideo, BreakerState, DayLedger, DuePage, ReferenceFile, StaleJob
from sora_relay.domain.provider import Accepted, GenerationRecord, MaybeTaken, ProviderUnavailable, SubmitOutcome
from sora_relay.domain.request import Priority, VideoRequest
from sora_relay.services.archive import ArchiveService
from sora_relay.services.assembly import Services, Tuning
from sora_relay.services.budget import CreditBudget
from sora_relay.services.cancel import CancelService
from sora_relay.services.finisher import Finisher
from sora_relay.services.line import Line
from sora_relay.services.poll.service import PollService
from sora_relay.services.submit.messages import InboundMessage
from sora_relay.services.submit.service import SubmitService
from sora_relay.services.videos import VideoApi
from sora_relay_tools.places import MemoryPlaces
from sora_relay_tools.simulator import ManualClock
from sora_relay_tools.simulator.server import RECORD_WORDS

from .api_fakes import FakeObjects, MemoryKeys, MemoryKeyVideos

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T = TypeVar("T")


class MemoryJobStore:
    shards = 1

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.owners: dict[str, str] = {}  # a provider generation's uuid: the request_id it is for
        self.prompt_holders: dict[str, str] = {}  # a recorded prompt's key: the twin that may send it
        self.sweep_leases: dict[int, tuple[str, datetime]] = {}  # a shard: its sweeper, until when
        self._sweep_lock = threading.Lock()
        # The next save that `fail_save_when` picks raises this.
        self.fail_next_save: Exception | None = None
        self.fail_save_when: Callable[[Job], bool] = lambda job: True

    def create(self, job: Job) -> bool:
        if job.request_id in self.jobs:
            return False
        self.jobs[job.request_id] = job
        return True

    def get(self, request_id: str) -> Job | None:
        return self.jobs.get(request_id)

    def save(self, job: Job) -> None:
        if self.fail_next_save is not None and self.fail_save_when(job):
            error, self.fail_next_save = self.fail_next_save, None
            raise error
        if self.jobs[job.request_id].version != job.version - 1:
            raise StaleJob(job.request_id)
        self.jobs[job.request_id] = job

    def own_generation(self, uuid: str, request_id: str) -> bool:
        return self.owners.setdefault(uuid, request_id) == request_id

    def generation_owner(self, uuid: str) -> str | None:
        return self.owners.get(uuid)

    def prompt_holder(self, prompt_key: str) -> str | None:
        return self.prompt_holders.get(prompt_key)

    def take_prompt(self, prompt_key: str, request_id: str, previous: str | None) -> bool:
        if self.prompt_holders.get(prompt_key) not in (previous, request_id):
            return False
        self.prompt_holders[prompt_key] = request_id
        return True

    def take_sweep(self, shard: int, holder: str, until: datetime, now: datetime) -> bool:
        with self._sweep_lock:
            current = self.sweep_leases.get(shard)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self.sweep_leases[shard] = (holder, until)
            return True

    def end_sweep(self, shard: int, holder: str) -> None:
        with self._sweep_lock:
            if self.sweep_leases.get(shard, ("", None))[0] == holder:
                del self.sweep_leases[shard]

    def next_due(self, shard: int) -> datetime | None:
        times = [j.next_check_at for j in self.jobs.values() if j.next_check_at is not None]
        return min(times, default=None)

    def due(self, shard: int, now: datetime, limit: int, start: object | None = None) -> DuePage:
        due = sorted(
            (
                j
                for j in self.jobs.values()
                if j.next_check_at is not None
                and j.next_check_at <= now
                and shard_of(j.request_id, self.shards) == shard
            ),
            key=index_key,
        )
        if start is not None:
            due = [j for j in due if index_key(j) > start]
        page = due[:limit]
        # As DynamoDB does: a full page says where the next one starts, even if it is empty.
        return DuePage(page, index_key(page[-1]) if len(page) == limit else None)


class MemoryLine(MemoryPlaces):
    """The line over a MemoryJobStore's waiting jobs, and the places as one record."""

    def __init__(self, store: MemoryJobStore) -> None:
        super().__init__()
        self.store = store

    def _waiting(self, priority: str | None = None) -> list[Job]:
        rank = {p.value: i for i, p in enumerate(Priority)}
        waiting = [
            job
            for job in self.store.jobs.values()
            if job.waiting and (priority is None or (job.request and job.request.priority.value == priority))
        ]
        return sorted(waiting, key=lambda j: (rank[j.request.priority.value if j.request else "normal"], j.created_at))

    def head(self, limit: int) -> list[str]:
        return [job.request_id for job in self._waiting()[:limit]]

    def length(self, priority: str) -> tuple[int, datetime | None]:
        waiting = self._waiting(priority)
        return len(waiting), min((job.created_at for job in waiting), default=None)


def index_key(job: Job) -> tuple[datetime, str]:
    assert job.next_check_at is not None
    return (job.next_check_at, job.request_id)


@dataclass(frozen=True)
class TakenThenLost:
    """A submit outcome for the fake: the provider takes the generation (it is in the history,
    and paid), and its answer is lost as `answer`."""

    answer: SubmitOutcome = field(default_factory=lambda: MaybeTaken("the provider answered HTTP 504"))


@dataclass
class FakeProvider:
    """Every accepted submission is a generation in the account's history (`history`, oldest
    first, full records), with a uuid of its own: `sora_abc` for the first, then `sora_1`,
    `sora_2`... The history list answers as the provider's does: lean rows (no settings), the
    prompt cut at its first ";"; a status call of a generation in it, its full record."""

    clock: ManualClock
    outcomes: list[SubmitOutcome | TakenThenLost] = field(default_factory=list)
    records: list[GenerationRecord | Exception] = field(default_factory=list)
    submitted: list[VideoRequest] = field(default_factory=list)
    extended: list[str | None] = field(default_factory=list)  # each submission's ref_history
    status_calls: list[str] = field(default_factory=list)
    history: list[GenerationRecord] = field(default_factory=list)
    history_failures: list[ProviderUnavailable] = field(default_factory=list)
    history_reads: int = 0
    history_within: list[float] = field(default_factory=list)  # the seconds each history read was given
    timeouts: list[float] = field(default_factory=list)
    # Raised once the next submission is taken: the invocation dies with the answer in hand.
    die_after_taking: BaseException | None = None
    # What a full record states of a request's settings: by default the request's own words;
    # `provider_words` writes them as the provider does (a Sora `small` is `720p`).
    recorded_settings: Callable[[VideoRequest], dict[str, object]] = field(default=lambda request: own_words(request))

    def submit(
        self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float, extends: str | None = None
    ) -> SubmitOutcome:
        self.submitted.append(request)
        self.extended.append(extends)
        self.timeouts.append(timeout)
        outcome = self.outcomes.pop(0) if self.outcomes else Accepted(record(status=1))
        if self.die_after_taking is not None:
            self._take(request, record(status=1))
            error, self.die_after_taking = self.die_after_taking, None
            raise error
        if isinstance(outcome, TakenThenLost):
            self._take(request, record(status=1))
            return outcome.answer
        if isinstance(outcome, Accepted):
            return Accepted(self._take(request, outcome.record))
        return outcome

    def _take(self, request: VideoRequest, answer: GenerationRecord) -> GenerationRecord:
        taken = {generation.uuid for generation in self.history}
        uuid = answer.uuid if answer.uuid not in taken else f"sora_{len(self.history)}"
        generation = answer.model_copy(
            update={
                "uuid": uuid,
                "created_at": self.clock(),
                "input_text": request.prompt,
                "model_name": request.model,
                **self.recorded_settings(request),
            }
        )
        self.history.append(generation)
        return generation

    def recent_generations(self, since: datetime, within: float) -> list[GenerationRecord]:
        self.history_reads += 1
        self.history_within.append(within)
        if self.history_failures:
            raise self.history_failures.pop(0)
        return [lean(g) for g in reversed(self.history) if g.created_at is None or g.created_at >= since]

    def status(self, uuid: str) -> GenerationRecord:
        self.status_calls.append(uuid)
        known = {generation.uuid: generation for generation in self.history}
        default = known.get(uuid, record(status=1, status_percentage=40))
        answer = self.records.pop(0) if self.records else default
        if isinstance(answer, Exception):
            raise answer
        return answer


def own_words(request: VideoRequest) -> dict[str, object]:
    return {"duration": request.duration, "resolution": request.resolution, "aspect_ratio": request.aspect_ratio}


def provider_words(request: VideoRequest) -> dict[str, object]:
    """A request's settings as the provider's full records write them (Sora's in pixels and ratios)."""
    return {name: RECORD_WORDS.get(str(value), value) for name, value in own_words(request).items()}


def lean(generation: GenerationRecord) -> GenerationRecord:
    """A generation as a history row shows it: the prompt cut at its first ";" and past 120
    characters, no settings."""
    cut = (generation.input_text or "").split(";", 1)[0][:120]
    return generation.model_copy(update={"input_text": cut, "duration": None, "resolution": None, "aspect_ratio": None})


def record(**fields: object) -> GenerationRecord:
    base: dict[str, object] = {
        "uuid": "sora_abc",
        "id": 7,
        "status": 1,
        "estimated_credit": 30,
        "expired_at": (START + timedelta(days=1)).isoformat(),
        "media_type": "video/mp4",
    }
    return GenerationRecord.model_validate({**base, **fields})


@dataclass
class FakeFiles:
    failures: dict[str, Exception] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # uri: why the policy refuses it
    fetched: list[str] = field(default_factory=list)
    # Called during each fetch (what else happens while a request's files are read).
    meanwhile: Callable[[], None] = lambda: None
    size: int = 3  # each file's bytes

    def problem(self, uri: str) -> str | None:
        return self.refused.get(uri)

    def fetch(self, uri: str, within: float) -> ReferenceFile:
        self.fetched.append(uri)
        self.meanwhile()
        if uri in self.failures:
            raise self.failures[uri]
        return ReferenceFile(uri.rsplit("/", 1)[-1], "image/png", b"p" * self.size)


@dataclass
class FakePublisher:
    published: list[VideoEvent] = field(default_factory=list)  # in the order published
    failures: list[Exception] = field(default_factory=list)
    # Which events the next `failures` strike (by default only final events).
    fail_when: Callable[[VideoEvent], bool] = lambda event: event.event.final

    def publish(self, event: VideoEvent) -> None:
        if self.failures and self.fail_when(event):
            raise self.failures.pop(0)
        self.published.append(event)

    @property
    def finals(self) -> list[VideoEvent]:
        return [event for event in self.published if event.event.final]

    def of(self, kind: EventType) -> list[VideoEvent]:
        return [event for event in self.published if event.event is kind]


@dataclass
class FakeRequestQueue:
    resent: list[tuple[str, VideoRequest]] = field(default_factory=list)
    delays: list[timedelta] = field(default_factory=list)

    def resend(self, request_id: str, request: VideoRequest, delay: timedelta = timedelta(0)) -> None:
        self.resent.append((request_id, request))
        self.delays.append(delay)


@dataclass
class MemoryLedger:
    """The days' spending and each attempt's reservation, as the jobs table keeps them: every
    change to a day made once, through its attempt."""

    spent: dict[date, float] = field(default_factory=dict)
    quoted: dict[str, float] = field(default_factory=dict)  # each kind's latest quote
    attempts: dict[str, dict[str, object]] = field(default_factory=dict)  # attempt_id: day, counted, stages

    def day(self, day: date) -> DayLedger:
        return DayLedger(self.spent.get(day, 0), self.quotes())

    def quotes(self) -> dict[str, float]:
        return dict(self.quoted)

    def reserve(self, attempt_id: str, day: date, amount: float, limit: float) -> bool:
        if attempt_id in self.attempts:
            return True
        if self.spent.get(day, 0) + amount > limit:
            return False
        self.attempts[attempt_id] = {"day": day, "counted": amount}
        self._add(day, amount)
        return True

    def count(self, attempt_id: str, amount: float, *, used: bool) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or "released" in attempt or "used" in attempt or (not used and "quoted" in attempt):
            return
        self._move(attempt, amount, "used" if used else "quoted")

    def release(self, attempt_id: str) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or "released" in attempt or "used" in attempt:
            return
        self._move(attempt, 0, "released")

    def quote(self, kind: str, amount: float) -> None:
        self.quoted[kind] = amount

    def _move(self, attempt: dict[str, object], amount: float, stage: str) -> None:
        counted = float(attempt["counted"])  # type: ignore[arg-type]
        attempt.update({"counted": amount, stage: True})
        self._add(attempt["day"], amount - counted)  # type: ignore[arg-type]

    def _add(self, day: date, amount: float) -> None:
        self.spent[day] = self.spent.get(day, 0) + amount


@dataclass
class FakeSweepQueue:
    fanned_out: list[int] = field(default_factory=list)

    def fan_out(self, shards: list[int]) -> None:
        self.fanned_out.extend(shards)


@dataclass
class FakeArchiveQueue:
    sent: list[str] = field(default_factory=list)

    def enqueue(self, request_id: str) -> None:
        self.sent.append(request_id)


@dataclass
class FakeArchive:
    failure: Exception | None = None  # every copy fails so, after `failures`
    failures: list[Exception] = field(default_factory=list)  # the next copies fail so, one each
    copies: list[tuple[str, str]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)  # as each copy was asked to store it
    # Called during each copy, before it succeeds (what else happens while a copy runs).
    meanwhile: Callable[[], None] = lambda: None
    thumbnails: list[tuple[str, str, float]] = field(default_factory=list)  # url, key stem, seconds given
    thumbnail_failure: Exception | None = None
    facts: VideoFacts | None = None  # what each copied file says of itself

    def copy(
        self,
        url: str,
        key: str,
        content_type: str | None,
        within: float = 900.0,
        keep_alive: Callable[[], None] = lambda: None,
    ) -> ArchivedVideo:
        self.keep_alive = keep_alive  # what `meanwhile` calls as bytes come
        self.copies.append((url, key))
        self.content_types.append(content_type)
        content_type = content_type or "video/mp4"  # as the bytes of an MP4 show
        if self.failures:
            raise self.failures.pop(0)
        if self.failure is not None:
            raise self.failure
        self.meanwhile()
        video = VideoObject(
            bucket="archive", key=key, uri=f"s3://archive/{key}", size=3, sha256="ab" * 32, content_type=content_type
        )
        return ArchivedVideo(video, self.facts)

    def copy_thumbnail(self, url: str, key_stem: str, within: float) -> ThumbnailObject:
        self.thumbnails.append((url, key_stem, within))
        if self.thumbnail_failure is not None:
            raise self.thumbnail_failure
        key = f"{key_stem}.jpg"
        return ThumbnailObject(bucket="archive", key=key, uri=f"s3://archive/{key}", size=2, content_type="image/jpeg")


@dataclass
class MemoryBreakers:
    """Each model's breaker, as the jobs table keeps it."""

    breakers: dict[str, BreakerState] = field(default_factory=dict)

    def read(self, model: str) -> BreakerState:
        return self.breakers.get(model, BreakerState())

    def count_failure(self, model: str, now: datetime, threshold: int) -> BreakerState:
        state = replace(self.read(model), failures=self.read(model).failures + 1)
        if state.failures >= threshold:
            state = BreakerState(failures=state.failures, opened_at=now)
        self.breakers[model] = state
        return state

    def reset(self, model: str) -> None:
        self.breakers[model] = BreakerState()

    def take_probe(self, model: str, holder: str, cooled_before: datetime, now: datetime, until: datetime) -> bool:
        state = self.read(model)
        if state.opened_at is None or state.opened_at > cooled_before:
            return False
        if state.probe not in (None, holder) and state.probe_until is not None and state.probe_until > now:
            return False
        self.breakers[model] = replace(state, probe=holder, probe_until=until)
        return True

    def states(self) -> dict[str, BreakerState]:
        return {model: state for model, state in self.breakers.items() if state.failures}


@dataclass
class FakeMetrics:
    counts: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        key = name + "".join(f"[{k}={v}]" for k, v in sorted(dimensions.items()))
        self.counts[key] += value


@dataclass
class World:
    """One set of fakes wired into all three services."""

    clock: ManualClock = field(default_factory=lambda: ManualClock(START))
    store: MemoryJobStore = field(default_factory=MemoryJobStore)
    provider: FakeProvider = field(init=False)
    files: FakeFiles = field(default_factory=FakeFiles)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    request_queue: FakeRequestQueue = field(default_factory=FakeRequestQueue)
    archive_queue: FakeArchiveQueue = field(default_factory=FakeArchiveQueue)
    sweep_queue: FakeSweepQueue = field(default_factory=FakeSweepQueue)
    archive: FakeArchive = field(default_factory=FakeArchive)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    policy: Policy = field(default_factory=Policy)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    daily_credit_budget: float | None = None
    progress_events: bool = False
    places: int = 100  # MaxActiveGenerations
    fallback_models: str = ""  # FallbackModels
    fallback_after_charged: bool = False  # FallbackAfterCharged
    waiting: MemoryLine = field(init=False)
    breaker_store: MemoryBreakers = field(default_factory=MemoryBreakers)
    keys: MemoryKeys = field(default_factory=MemoryKeys)
    objects: FakeObjects = field(default_factory=FakeObjects)
    api_calls_per_minute: int = 120

    record = staticmethod(record)

    def __post_init__(self) -> None:
        self.provider = FakeProvider(self.clock)
        self.waiting = MemoryLine(self.store)

    # The parts the services are made of (sora_relay.services.assembly.Parts).

    @property
    def line_store(self) -> MemoryLine:
        return self.waiting

    @property
    def key_videos(self) -> MemoryKeyVideos:
        return MemoryKeyVideos(self.store.jobs)

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.clock.sleep

    @property
    def tuning(self) -> Tuning:
        return Tuning(
            policy=self.policy,
            daily_credit_budget=self.daily_credit_budget,
            max_active_generations=self.places,
            progress_events=self.progress_events,
            rules=RequestRules.of(fallback_models=self.fallback_models),
            fallback_after_charged=self.fallback_after_charged,
            input_location="s3://archive/inputs/",
            api_calls_per_minute=self.api_calls_per_minute,
        )

    # Each service as Lambda's wiring makes it, from these parts (made anew on each access,
    # so that a test may change a part first).

    @property
    def services(self) -> Services:
        return Services(self)

    @property
    def line(self) -> Line:
        return self.services.line

    @property
    def finisher(self) -> Finisher:
        return self.services.finisher

    @property
    def budget(self) -> CreditBudget:
        return self.services.budget

    @property
    def submitter(self) -> SubmitService:
        return self.services.submitter

    @property
    def poller(self) -> PollService:
        return self.services.poller

    @property
    def canceler(self) -> CancelService:
        return CancelService(self.store, self.finisher, self.clock)

    @property
    def archiver(self) -> ArchiveService:
        return self.services.archiver

    @property
    def videos(self) -> VideoApi:
        return self.services.videos

    def deliver_starts(self) -> list[str]:
        """Deliver every message the line sent to start a request, as SQS would; their
        request_ids, in the order sent."""
        started = []
        while self.request_queue.resent:
            request_id, request = self.request_queue.resent.pop(0)
            body = json.dumps({**request.as_message(), "request_id": request_id})
            self.submitter.handle(InboundMessage(f"start-{request_id}", body))
            started.append(request_id)
        return started

    def minute(self, minutes: int = 1) -> None:
        """Time passes as the stack lives it: each minute the poll tends the line and sweeps,
        and the messages it sends are delivered."""
        for _ in range(minutes):
            self.clock.advance(timedelta(minutes=1))
            self.poller.tend_line()
            self.poller.sweep()
            self.deliver_starts()


class InFlight:
    """Wraps a call so that each takes `pause` seconds, and counts the most in flight at once."""

    def __init__(self, pause: float) -> None:
        self.most = 0
        self._now = 0
        self._pause = pause
        self._lock = threading.Lock()

    def around(self, call: Callable[..., T]) -> Callable[..., T]:
        def counted(*args: object) -> T:
            with self._lock:
                self._now += 1
                self.most = max(self.most, self._now)
            time.sleep(self._pause)
            with self._lock:
                self._now -= 1
            return call(*args)

        return counted
