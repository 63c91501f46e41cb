"""Archive: copy a finished video into S3 before its address expires, then announce it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sora_relay.events import ErrorCode, iso_utc
from sora_relay.jobs import JobState
from sora_relay.observability import logger
from sora_relay.ports import Clock, JobStore, MediaGone, MediaNotAllowed, Metrics, StaleJob, VideoArchive
from sora_relay.services.lifecycle import Finisher
from sora_relay.services.policy import Policy


class ArchiveOutcome(StrEnum):
    ARCHIVED = "archived"
    EXPIRED = "expired"
    PUBLISHED = "published"
    NOTHING_TO_DO = "nothing_to_do"


class ArchiveFailed(Exception):
    """The copy did not succeed this time; the hand-off should be delivered again."""


@dataclass(frozen=True)
class ArchiveService:
    store: JobStore
    archive: VideoArchive
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock

    def archive_job(self, request_id: str) -> ArchiveOutcome:
        job = self.store.get(request_id)
        if job is None:
            logger.warning("archive hand-off for an unknown job", extra={"request_id": request_id})
            return ArchiveOutcome.NOTHING_TO_DO
        if job.state.final:
            if job.event_published:
                return ArchiveOutcome.NOTHING_TO_DO
            self.finisher.publish(job, self.clock())  # the copy is done; only the event is owed
            return ArchiveOutcome.PUBLISHED
        if job.state is not JobState.COMPLETED or job.video_url is None:
            return ArchiveOutcome.NOTHING_TO_DO
        key = self.policy.archive_key(request_id)
        try:
            video = self.archive.copy(job.video_url, key, job.media_type or "video/mp4")
        except Exception as error:
            expired_at = job.expired_at
            now = self.clock()
            if expired_at is not None and now >= expired_at:
                message = f"the video could not be copied before its expired_at ({iso_utc(expired_at)}): {error}"
                self._fail_expired(request_id, message)
                return ArchiveOutcome.EXPIRED
            if isinstance(error, MediaGone | MediaNotAllowed):
                logger.error("video address refused; retrying until expired_at", extra={"reason": str(error)})
            raise ArchiveFailed(str(error)) from error
        self.metrics.count("ArchiveBytes", video.size, unit="Bytes")
        try:
            self.finisher.archive(job, video, self.clock())
        except StaleJob:
            # A concurrent copy of the same hand-off finished first; the object is the same bytes.
            logger.info("job was archived by another invocation")
        return ArchiveOutcome.ARCHIVED

    def _fail_expired(self, request_id: str, message: str) -> None:
        job = self.store.get(request_id)
        if job is not None and not job.state.final:
            self.finisher.fail(job, ErrorCode.EXPIRED, message, self.clock())
