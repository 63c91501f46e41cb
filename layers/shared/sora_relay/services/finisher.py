"""A job's events: `video.submitted` once the provider took it, then one final state and one
final event, each published at least once with the same event_id."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sora_relay.domain.events import (
    Delivered,
    ErrorCode,
    EventError,
    EventType,
    ProviderSummary,
    ThumbnailObject,
    VideoEvent,
    VideoObject,
    build_event,
    build_interim_event,
    iso_utc,
)
from sora_relay.domain.jobs import Job
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import EventPublisher, JobStore, Metrics, StaleJob
from sora_relay.observability import logger


@dataclass(frozen=True)
class Finisher:
    store: JobStore
    publisher: EventPublisher
    metrics: Metrics
    policy: Policy

    def final_version(
        self,
        job: Job,
        now: datetime,
        *,
        video: VideoObject | None = None,
        thumbnail: ThumbnailObject | None = None,
        delivered: Delivered | None = None,
        error: EventError | None = None,
    ) -> Job:
        """The job's final version, with the event it owes (not yet saved)."""
        event = build_event(
            request_id=job.request_id,
            occurred_at=now,
            request=job.request,
            provider=job.provider,
            metadata=job.metadata,
            video=video,
            thumbnail=thumbnail,
            delivered=delivered,
            error=error,
            earlier_attempts=job.attempts,
            key=job.key,
        )
        # Stays in the outstanding index until the event is confirmed published.
        return job.ended(now, event, archived=video is not None, check_at=now + self.policy.publish_watchdog)

    def fail(self, job: Job, code: ErrorCode, message: str, now: datetime) -> Job:
        failed = self.final_version(job, now, error=EventError(code=code, message=message))
        self.store.save(failed)
        logger.warning("job failed", extra={"error_code": code.value, "error_message": message})
        self.metrics.count("JobsFailed", code=code.value)
        return self.publish(failed, now)

    def end_if_too_late_to_copy(self, job: Job, now: datetime, reason: str | None = None) -> bool:
        """End a finished video's job whose copy is past its deadline (see Policy.archive_deadline);
        False, changing nothing, while there is time left. `reason`: why the last copy failed."""
        finished_at = job.completed_at or job.started_at
        expired_at = job.expired_at
        deadline = self.policy.archive_deadline(finished_at, expired_at)
        if now < deadline:
            return False
        if expired_at is not None and deadline == expired_at:
            code, message = ErrorCode.EXPIRED, f"the video was not copied before its expired_at ({iso_utc(expired_at)})"
        else:
            hours = int(self.policy.archive_window.total_seconds() // 3600)
            code, message = ErrorCode.TIMED_OUT, f"the video was not copied within {hours} hours of being finished"
        self.fail(job, code, f"{message}: {reason}" if reason else message, now)
        return True

    def archive(
        self,
        job: Job,
        video: VideoObject,
        now: datetime,
        thumbnail: ThumbnailObject | None = None,
        delivered: Delivered | None = None,
    ) -> Job:
        archived = self.final_version(job, now, video=video, thumbnail=thumbnail, delivered=delivered)
        self.store.save(archived)
        self.metrics.count("JobsCompleted", family=job.request.family if job.request else "unknown")
        return self.publish(archived, now)

    def publish(self, job: Job, now: datetime) -> Job:
        """Publish the job's final event; safe to repeat (subscribers de-duplicate on event_id)."""
        event = job.final_event
        assert event is not None, "only a finished job has an event to publish"
        job = self.announce(job)
        self.publisher.publish(event)
        published = job.published(now)
        try:
            self.store.save(published)
        except StaleJob:
            # Another invocation published the same event and recorded it first.
            return job
        return published

    def announce(self, job: Job) -> Job:
        """Publish `video.submitted` if the job owes it; the job as it is then, to be saved with
        the caller's next version (until it is, the event may go out again, with its event_id)."""
        if job.submitted_event_published:
            return job
        event = self.submitted_event(job)
        if event is None:
            return job
        self.publisher.publish(event)
        return replace(job, submitted_event_published=True)

    @staticmethod
    def submitted_event(job: Job) -> VideoEvent | None:
        """The job's `video.submitted`; None for a job the provider never took."""
        if job.provider is None:
            return None
        provider = job.provider.model_copy(update={"used_credit": None})
        return _interim(job, EventType.SUBMITTED, job.started_at, provider)

    @staticmethod
    def progress_event(job: Job, progress: int, now: datetime) -> VideoEvent | None:
        """A `video.progress` of the job at `progress` percent; None for a job the provider never took."""
        if job.provider is None:
            return None
        return _interim(job, EventType.PROGRESS, now, job.provider, progress)


def _interim(
    job: Job, kind: EventType, occurred_at: datetime, provider: ProviderSummary, progress: int | None = None
) -> VideoEvent | None:
    if job.request is None:
        return None
    return build_interim_event(
        kind,
        request_id=job.request_id,
        occurred_at=occurred_at,
        request=job.request,
        provider=provider,
        metadata=job.metadata,
        progress=progress,
        attempt=job.attempt_number,
        key=job.key,
    )
