"""Ending a job: one final state, one event, published at least once with the same event_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sora_relay.events import ErrorCode, EventError, VideoObject, build_event
from sora_relay.jobs import Job, JobState
from sora_relay.observability import logger
from sora_relay.ports import EventPublisher, JobStore, Metrics, StaleJob
from sora_relay.services.policy import Policy


@dataclass(frozen=True)
class Finisher:
    store: JobStore
    publisher: EventPublisher
    metrics: Metrics
    policy: Policy

    def final_version(
        self, job: Job, now: datetime, *, video: VideoObject | None = None, error: EventError | None = None
    ) -> Job:
        """The job's final version, with the event it owes (not yet saved)."""
        event = build_event(
            request_id=job.request_id,
            occurred_at=now,
            request=job.request,
            provider=job.provider,
            metadata=job.metadata,
            video=video,
            error=error,
        )
        return job.moved(
            now,
            state=JobState.ARCHIVED if video is not None else JobState.FAILED,
            final_event=event,
            event_published=False,
            lease_until=None,
            # Stays in the outstanding index until the event is confirmed published.
            next_check_at=now + self.policy.publish_watchdog,
        )

    def fail(self, job: Job, code: ErrorCode, message: str, now: datetime) -> Job:
        failed = self.final_version(job, now, error=EventError(code=code, message=message))
        self.store.save(failed)
        logger.warning("job failed", extra={"error_code": code.value, "error_message": message})
        self.metrics.count("JobsFailed", code=code.value)
        return self.publish(failed, now)

    def archive(self, job: Job, video: VideoObject, now: datetime) -> Job:
        archived = self.final_version(job, now, video=video)
        self.store.save(archived)
        self.metrics.count("JobsCompleted")
        return self.publish(archived, now)

    def publish(self, job: Job, now: datetime) -> Job:
        """Publish the job's final event; safe to repeat (subscribers de-duplicate on event_id)."""
        assert job.final_event is not None, "only a finished job has an event to publish"
        self.publisher.publish(job.final_event)
        published = job.moved(now, event_published=True, next_check_at=None)
        try:
            self.store.save(published)
        except StaleJob:
            # Another invocation published the same event and recorded it first.
            return job
        return published
