"""The domain's view of the outside world. Adapters implement these; tests pass plain fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from sora_relay.domain.delivered import VideoFacts
from sora_relay.domain.events import ThumbnailObject, VideoEvent, VideoObject
from sora_relay.domain.jobs import Job
from sora_relay.domain.provider import GenerationRecord, SubmitOutcome
from sora_relay.domain.request import VideoRequest


class StaleJob(Exception):
    """The job changed since it was read: another invocation moved it first."""


@dataclass(frozen=True)
class DuePage:
    jobs: list[Job]
    # Where the next page starts; None when this page holds the last due jobs.
    next_page: object | None = None


class JobStore(Protocol):
    def create(self, job: Job) -> bool:
        """Store a new job; False when its request_id is already there."""

    def get(self, request_id: str) -> Job | None: ...

    def save(self, job: Job) -> None:
        """Store the next version of a job; raises StaleJob if the stored one is not `job.version - 1`."""

    def due(self, shard: int, now: datetime, limit: int, start: object | None = None) -> DuePage:
        """Up to `limit` jobs of one index shard whose `next_check_at` has come, soonest first;
        from `start` (a page's `next_page`) on, or from the first."""

    def next_due(self, shard: int) -> datetime | None:
        """The soonest `next_check_at` of one index shard (a one-item read)."""

    def take_sweep(self, shard: int, holder: str, until: datetime, now: datetime) -> bool:
        """Make `holder` the only sweeper of one index shard until `until`, unless another holds
        it now (a conditional write). True when it is `holder`'s now."""

    def end_sweep(self, shard: int, holder: str) -> None:
        """Give up a shard's sweep lease, if `holder` still has it."""

    def own_generation(self, uuid: str, request_id: str) -> bool:
        """Make the provider's generation `uuid` this request's, unless another request's it is
        already (a conditional write: one generation is never two jobs'). True when it is this
        request's now, including when it was before."""

    def generation_owner(self, uuid: str) -> str | None:
        """The request_id whose the provider's generation `uuid` is, if any's."""

    def prompt_holder(self, prompt_key: str) -> str | None:
        """The request that last took `prompt_key` (see `take_prompt`), if any did."""

    def take_prompt(self, prompt_key: str, request_id: str, previous: str | None) -> bool:
        """Make `request_id` the holder of `prompt_key`, if `previous` still holds it (None:
        nobody does) or it holds it already (a conditional write). True when it does now."""


@dataclass(frozen=True)
class Places:
    """The account's places as the line holds them: who holds one, and what the provider taught it.

    Each place is named for its holder and the moment it was taken (`Job.place`): freeing a
    place a request held frees only that one, never a place the same request took since."""

    holders: frozenset[str] = frozenset()
    # Fewer places than configured, learned from a refusal, until `learned_until`.
    learned_limit: int | None = None
    learned_until: datetime | None = None
    # No start before this (after a refusal, backing off), and why.
    resume_at: datetime | None = None
    refusals: int = 0  # in a row, since the last accepted submission
    reason: str | None = None
    # Why the head of the line may not start, when it is not a place (the day's credit budget).
    held_by: str | None = None

    @property
    def holder_ids(self) -> frozenset[str]:
        """The request_ids holding places."""
        return frozenset(holder_of(place) for place in self.holders)

    def limit(self, configured: int, now: datetime) -> int:
        """How many places may be held now."""
        if self.learned_limit is not None and self.learned_until is not None and now < self.learned_until:
            return min(configured, self.learned_limit)
        return configured

    def paused(self, now: datetime) -> bool:
        return self.resume_at is not None and now < self.resume_at


def holder_of(place: str) -> str:
    """The request_id a place is named for (`request_id@taken_at`)."""
    return place.split("@", 1)[0]


class LineStore(Protocol):
    """The line of waiting requests (jobs saved `waiting`) and the account's places."""

    def head(self, limit: int) -> list[str]:
        """The request_ids of up to `limit` waiting jobs, in the order they start: by priority,
        then by arrival."""

    def length(self, priority: str) -> tuple[int, datetime | None]:
        """How many jobs of one priority wait, and when the first of them arrived."""

    def places(self) -> Places: ...

    def take_place(self, place: str, limit: int, now: datetime) -> bool:
        """Take `place` if fewer than `limit` (and the learned limit) are held and starts are not
        paused (a conditional write); True also when it is held already."""

    def free_place(self, place: str) -> None:
        """`place` is held no more (whether it was or not)."""

    def hold_starts(self, reason: str | None) -> None:
        """Why the head of the line may not start, besides a place (None: nothing holds it)."""

    def slow_down(self, learned_limit: int, learned_until: datetime, resume_at: datetime, reason: str) -> None:
        """After a refusal: fewer places until `learned_until`, no start before `resume_at`; one
        more refusal in a row."""

    def speed_up(self, refusals: int) -> None:
        """An accepted submission: the refusals in a row are over, unless more came since
        `refusals` were seen (a refusal after it keeps its pause)."""


@dataclass(frozen=True)
class ReferenceFile:
    filename: str
    content_type: str
    content: bytes
    field: str = "files"  # the provider's part name for it (the family's reference field)


class InvalidReference(Exception):
    """A `files` entry the worker cannot use (missing, forbidden, too large): the user's to fix."""


class ReferenceUnavailable(Exception):
    """A `files` entry that could not be read this time; reading it again may work."""


class ReferenceFiles(Protocol):
    def problem(self, uri: str) -> str | None:
        """Why `uri` may not be read (a bucket or host this stack does not read from), or None:
        asked before any credit is reserved for the request."""

    def fetch(self, uri: str, within: float) -> ReferenceFile:
        """The file, read whole within `within` seconds. Raises InvalidReference (the user's to
        fix) or ReferenceUnavailable (worth another try: also when it was not read in time)."""


class Provider(Protocol):
    def submit(
        self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float, extends: str | None = None
    ) -> SubmitOutcome:
        """One submission, over within `timeout` seconds whatever the provider does: a new
        generation of the request's family, or, with `extends` (an earlier generation's uuid),
        that generation continued."""

    def status(self, uuid: str) -> GenerationRecord:
        """Raises ProviderUnavailable when no usable answer came."""

    def recent_generations(self, since: datetime, within: float) -> list[GenerationRecord]:
        """The account's generations created since `since` (and those whose time is not stated),
        every one of them, read within `within` seconds. Raises ProviderUnavailable when the
        history cannot be read that far back in that time."""


class MediaGone(Exception):
    """The video's address answered that the file is not there (403, 404, 410)."""


class MediaNotAllowed(Exception):
    """The video's address is not https on an allowed host: it is not downloaded."""


@dataclass(frozen=True)
class ArchivedVideo:
    """A copy made: the object, and what the file says of itself (None when it does not say)."""

    video: VideoObject
    facts: VideoFacts | None = None


class VideoArchive(Protocol):
    def copy(
        self, url: str, key: str, content_type: str | None, within: float, keep_alive: Callable[[], None] = ...
    ) -> ArchivedVideo:
        """Stream the video at `url` into the archive at `key`, whole and checksummed, stored as
        `content_type` (None: as the file's own bytes show), within `within` seconds, calling
        `keep_alive` as the bytes come (the caller renews its lease).

        Raises MediaGone or MediaNotAllowed; any other exception is worth another try."""

    def copy_thumbnail(self, url: str, key_stem: str, within: float) -> ThumbnailObject:
        """Copy the image at `url` to `key_stem` plus the extension of its type, within
        `within` seconds; raises on any failure (the caller goes on without it)."""


class EventPublisher(Protocol):
    def publish(self, event: VideoEvent) -> None: ...


class RequestQueue(Protocol):
    def resend(self, request_id: str, request: VideoRequest, delay: timedelta = timedelta(0)) -> None:
        """Put a request back on the request queue, under its request_id, to come after `delay`."""


@dataclass(frozen=True)
class DayLedger:
    spent: float
    quotes: dict[str, float]  # a kind of request: its latest quoted estimated_credit, any day


class CreditLedger(Protocol):
    """The days' spending, changed only through attempts: each attempt's reservation is kept
    under its `attempt_id`, on the day it was made, and every change to it lands once."""

    def day(self, day: date) -> DayLedger: ...

    def quotes(self) -> dict[str, float]:
        """The latest quote of each kind of request (a day's ledger holds them too)."""

    def reserve(self, attempt_id: str, day: date, amount: float, limit: float) -> bool:
        """Reserve `amount` on `day` for the attempt if that keeps the day within `limit`; False,
        changing nothing, when it would not. True, changing nothing, when the attempt has
        reserved already."""

    def count(self, attempt_id: str, amount: float, *, used: bool) -> None:
        """The attempt counts `amount` now (its quote; or, `used`, what the generation used),
        on its day: once each, and a quote never after what was used. Nothing for an attempt
        that reserved nothing, or was released."""

    def release(self, attempt_id: str) -> None:
        """The attempt was not taken: what it counts is the day's again, once. Nothing for an
        attempt that reserved nothing."""

    def quote(self, kind: str, amount: float) -> None:
        """A kind of request's latest quote (quotes outlive the day)."""


@dataclass(frozen=True)
class BreakerState:
    """A model's failures in a row that were not the requests' fault; since when its breaker is
    open (None: closed), and the request probing it, until when."""

    failures: int = 0
    opened_at: datetime | None = None
    probe: str | None = None
    probe_until: datetime | None = None


class BreakerStore(Protocol):
    """Each model's breaker (docs/reliability.md, "A breaker per model")."""

    def read(self, model: str) -> BreakerState: ...

    def count_failure(self, model: str, now: datetime, threshold: int) -> BreakerState:
        """One more failure in a row; at `threshold` or more, the breaker (re)opens at `now` and
        its probe is over. The state after."""

    def reset(self, model: str) -> None:
        """A generation of the model succeeded: no failures, closed."""

    def take_probe(self, model: str, holder: str, cooled_before: datetime, now: datetime, until: datetime) -> bool:
        """`holder` probes the open breaker, if it opened before `cooled_before` and nobody else
        probes it now; True when it is (or already was) the probe."""

    def states(self) -> dict[str, BreakerState]:
        """Every model's breaker that has failures (for people looking)."""


class ArchiveQueue(Protocol):
    def enqueue(self, request_id: str) -> None: ...


class SweepQueue(Protocol):
    def fan_out(self, shards: list[int]) -> None:
        """Hand each shard to an invocation of its own."""


class Metrics(Protocol):
    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
