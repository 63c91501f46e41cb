"""A job: one request_id's journey, as the jobs table holds it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sora_relay.domain.events import AttemptSummary, ProviderSummary, VideoEvent
from sora_relay.domain.request import VideoRequest


class JobState(StrEnum):
    RECEIVED = "received"  # claimed; the provider has not (knowingly) accepted it yet
    SUBMITTED = "submitted"  # the provider accepted it; being polled
    COMPLETED = "completed"  # the provider has the video; handed to the archiver
    ARCHIVED = "archived"  # the video is in S3
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in {JobState.ARCHIVED, JobState.FAILED}


# What a job holds of an attempt, once the attempt is over without a generation (a submitted
# job keeps its `attempt_id`: its credits count under it).
_NO_ATTEMPT: dict[str, object] = {"attempt_started_at": None, "attempt_reserved": 0, "attempt_id": None}


# What a job holds of its generation: none, for a new attempt (a fallback); and in line.
_NO_GENERATION = dict.fromkeys(("provider", "submitted_at", "progress_at", "completed_at", "video_url", "media_type"))
_NO_GENERATION |= {"thumbnail_url": None, "submitted_event_published": False, "progress": 0, "status_checks": 0}


def _in_line(check_at: datetime, reason: str | None) -> dict[str, object]:
    return {"waiting": True, "placed_at": None, "lease_until": None, "held": reason, "next_check_at": check_at}


@dataclass(frozen=True)
class Job:
    """Every change is saved conditionally on `version`, so two invocations cannot both move a job.

    `next_check_at` is set while the job still owes work that a poll sweep must do or watch
    (a status call, a hand-off to the archiver, an unpublished event); it puts the job in
    the sparse index of outstanding jobs, and a finished job leaves it.
    """

    request_id: str
    state: JobState
    fingerprint: str
    created_at: datetime
    updated_at: datetime
    version: int = 0
    request: VideoRequest | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # Until when one invocation has the job to itself: a claim being submitted, or a video
    # being copied. Nobody else moves it meanwhile; if the holder dies, the lease runs out.
    lease_until: datetime | None = None
    # Set from just before a submission until the provider's answer is known: whoever takes
    # the claim over must first look in the account's history for what the attempt made.
    attempt_started_at: datetime | None = None
    attempt_reserved: float = 0  # the credits the attempt reserves in the daily budget
    # The attempt's name, unique to it: the daily budget keeps its reservation under it, and
    # counts the generation it made under it (kept once the job is submitted).
    attempt_id: str | None = None
    provider: ProviderSummary | None = None
    submitted_at: datetime | None = None
    # Whether `video.submitted` is out: it must be before any later event of the job.
    submitted_event_published: bool = False
    progress: int = 0
    progress_at: datetime | None = None  # when `progress` last moved
    status_checks: int = 0
    completed_at: datetime | None = None  # when the provider was first seen to have the video
    video_url: str | None = None
    thumbnail_url: str | None = None
    media_type: str | None = None
    next_check_at: datetime | None = None
    final_event: VideoEvent | None = None
    event_published: bool = False
    # Unique to each version written: finding it stored proves the write was this one.
    revision: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Why a waiting request waits, when it is not for a place: the day's credit budget, a twin
    # whose attempt is open, an earlier video not finished.
    held: str | None = None
    # In the line of requests waiting for one of the account's places (docs/line.md).
    waiting: bool = False
    # Since when the job holds one of the account's places: from its start out of the line
    # until the provider refused it or its generation ended.
    placed_at: datetime | None = None
    reference_failures: int = 0  # attempts whose reference files could not be read in time
    # The models tried before this one (each a failure that cost nothing), in order.
    attempts: tuple[AttemptSummary, ...] = ()
    key: str | None = None  # the name of the API key it was made with (docs/api.md), if any

    # The transitions. Each is the job's next version (saved conditionally on this one's), and
    # each names what it changes; `next_check_at` is when a sweep looks at the job again.

    def check_again(self, now: datetime, at: datetime | None) -> Job:
        """Nothing changes but when a sweep looks at the job next."""
        return self._next(now, next_check_at=at)

    def leased(self, now: datetime, until: datetime | None, *, check_at: datetime | None) -> Job:
        """One invocation has the job to itself until `until`: a claim taken, a copy begun, an
        answer awaited (None: given back)."""
        return self._next(now, lease_until=until, next_check_at=check_at)

    def joined_line(self, now: datetime, *, check_at: datetime, reason: str | None = None) -> Job:
        """Waiting in line for a place (again, after a refusal: its arrival keeps its turn);
        `reason`, why it waits when that is not a place (the budget, a twin, an earlier video)."""
        return self._next(now, **_in_line(check_at, reason), **_NO_ATTEMPT)

    def started(self, now: datetime, lease_until: datetime | None, *, check_at: datetime) -> Job:
        """Out of the line with a place taken for it."""
        return self._next(now, waiting=False, placed_at=now, lease_until=lease_until, next_check_at=check_at)

    def attempting(self, now: datetime, reserved: float) -> Job:
        """About to be submitted, reserving `reserved` credits under a name of its own."""
        attempt_id = f"{self.request_id}@{now.isoformat()}"
        return self._next(now, attempt_started_at=now, attempt_reserved=reserved, attempt_id=attempt_id, held=None)

    def released(self, now: datetime, *, check_at: datetime) -> Job:
        """Its claim, place and attempt given back: it goes again later, from the line."""
        return self._next(now, lease_until=None, placed_at=None, next_check_at=check_at, **_NO_ATTEMPT)

    def not_taken(self, now: datetime) -> Job:
        """Its attempt was not taken by the provider (nothing was made): cleared, while its claim
        and place stand, so that it may go again."""
        return self._next(now, **_NO_ATTEMPT)

    def submitted(
        self,
        now: datetime,
        provider: ProviderSummary,
        *,
        progress: int,
        media_type: str | None,
        check_at: datetime,
    ) -> Job:
        """Taken by the provider: its generation is polled from now on."""
        return self._next(
            now,
            state=JobState.SUBMITTED,
            provider=provider,
            submitted_at=self.attempt_started_at or now,
            lease_until=None,
            attempt_started_at=None,
            attempt_reserved=0,
            progress=progress,
            progress_at=now,
            media_type=media_type,
            next_check_at=check_at,
        )

    def running(self, now: datetime, provider: ProviderSummary, progress: int, *, check_at: datetime) -> Job:
        """Checked once more and still generating, at `progress`."""
        return self._next(
            now,
            provider=provider,
            status_checks=self.status_checks + 1,
            progress=progress,
            progress_at=now if progress > self.progress else self.progress_at,
            next_check_at=check_at,
        )

    def completed(
        self,
        now: datetime,
        provider: ProviderSummary,
        *,
        video_url: str | None,
        thumbnail_url: str | None,
        media_type: str | None,
        check_at: datetime,
    ) -> Job:
        """The provider has the video: handed to the archiver."""
        return self._next(
            now,
            state=JobState.COMPLETED,
            completed_at=now,
            provider=provider,
            status_checks=self.status_checks + 1,
            progress=100,
            video_url=video_url,
            thumbnail_url=thumbnail_url,
            media_type=media_type or self.media_type,
            next_check_at=check_at,
        )

    def fell_back(self, now: datetime, request: VideoRequest, attempt: AttemptSummary, *, check_at: datetime) -> Job:
        """Its model failed at no cost: the next model's request waits in line (at its arrival's
        turn, as `joined_line`), a new attempt with nothing of the last one's generation but its
        summary."""
        return self._next(
            now,
            state=JobState.RECEIVED,
            request=request,
            attempts=(*self.attempts, attempt),
            **_NO_GENERATION,
            reference_failures=0,
            **_in_line(check_at, None),
            **_NO_ATTEMPT,
        )

    def ended(self, now: datetime, event: VideoEvent, *, archived: bool, check_at: datetime) -> Job:
        """Final, with the event it owes (out of the line, if it was in it)."""
        return self._next(
            now,
            state=JobState.ARCHIVED if archived else JobState.FAILED,
            final_event=event,
            event_published=False,
            lease_until=None,
            waiting=False,
            next_check_at=check_at,
        )

    def published(self, now: datetime) -> Job:
        """Its final event is out: nothing is owed, and it leaves the sweeps' index."""
        return self._next(now, event_published=True, next_check_at=None)

    def _next(self, now: datetime, **changes: object) -> Job:
        return replace(
            self,
            updated_at=now,
            version=self.version + 1,
            revision=uuid.uuid4().hex,
            **changes,  # type: ignore[arg-type]
        )

    @property
    def attempt_number(self) -> int:
        """Which model of the request's this is: 1, then one more for each fallback."""
        return len(self.attempts) + 1

    @property
    def expired_at(self) -> datetime | None:
        return expiry(self.provider)

    # What a job in a given stage always has: each raises for a job not in that stage.

    @property
    def claimed_request(self) -> VideoRequest:
        """The request of a claimed job: only a valid request is ever claimed (or waits in line)."""
        if self.request is None:
            raise ValueError(f"job {self.request_id} holds no valid request")
        return self.request

    @property
    def attempt_began(self) -> datetime:
        """When the open attempt began."""
        if self.attempt_started_at is None:
            raise ValueError(f"job {self.request_id} has no attempt open")
        return self.attempt_started_at

    @property
    def claimed_attempt_id(self) -> str:
        """The open attempt's name."""
        if self.attempt_id is None:
            raise ValueError(f"job {self.request_id} has no attempt open")
        return self.attempt_id

    @property
    def generation(self) -> ProviderSummary:
        """The generation the provider took for the job (submitted, and after)."""
        if self.provider is None:
            raise ValueError(f"job {self.request_id} was not taken by the provider")
        return self.provider

    @property
    def published_event(self) -> VideoEvent | None:
        """The final event, once it is published (what a subscriber has seen)."""
        return self.final_event if self.state.final and self.event_published else None

    def asks_for(self, fingerprint: str) -> bool:
        """Whether a message of this `fingerprint` asks for what the job holds: by the fingerprint
        taken when it was claimed, or by its stored request read as this version reads requests
        (a job claimed by an earlier version, whose fingerprints were taken otherwise, still goes)."""
        return self.fingerprint == fingerprint or (
            self.request is not None and self.request.fingerprint() == fingerprint
        )

    @property
    def attempt_open(self) -> bool:
        """A submission was (or is being) sent, and what the provider made of it is not known yet."""
        return self.state is JobState.RECEIVED and self.attempt_started_at is not None

    def lease_expired(self, now: datetime) -> bool:
        return self.lease_until is None or self.lease_until <= now

    @property
    def place(self) -> str | None:
        """The place the job holds, named for it and the moment it was taken (see `Places`)."""
        return place_name(self.request_id, self.placed_at) if self.placed_at is not None else None

    @property
    def holds_place(self) -> bool:
        """Whether the job may be taking one of the account's places: started out of the line
        and not yet refused, or running at the provider."""
        return self.state is JobState.SUBMITTED or (self.state is JobState.RECEIVED and self.placed_at is not None)

    @property
    def started_at(self) -> datetime:
        """When the generation began: its submission, or its start out of the line (or its
        arrival) before that."""
        return self.submitted_at or self.placed_at or self.created_at

    def age(self, now: datetime) -> timedelta:
        return now - self.started_at


def expiry(provider: ProviderSummary | None) -> datetime | None:
    """When the provider deletes the generation's video, as it stated."""
    if provider is None or provider.expired_at is None:
        return None
    return datetime.fromisoformat(provider.expired_at.replace("Z", "+00:00"))


def place_name(request_id: str, taken_at: datetime) -> str:
    """A place's name: its holder and the moment it was taken."""
    return f"{request_id}@{taken_at.isoformat()}"
