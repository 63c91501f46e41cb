"""Archive: copy a finished video into S3 before its address expires, then announce it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sora_relay.domain.delivered import delivered
from sora_relay.domain.events import Delivered, ErrorCode, ThumbnailObject, VideoObject
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import (
    ArchivedVideo,
    Clock,
    JobStore,
    MediaGone,
    MediaNotAllowed,
    Metrics,
    Provider,
    StaleJob,
    VideoArchive,
)
from sora_relay.domain.provider import ProviderUnavailable, full_media_type
from sora_relay.observability import logger
from sora_relay.services.finisher import Finisher

# Saving a finished copy is tried this many times when the job moves under it (each time on
# the version just read): a verified copy is never thrown away for a version number.
_COMMIT_TRIES = 3
# Another copy attempt starts only with this much of the invocation left after its pause.
_TIME_FOR_A_TRY = timedelta(minutes=1)
# What recording a copy and publishing its event may take, with the SDK's retries.
_TIME_TO_COMMIT = timedelta(seconds=30)


class ArchiveOutcome(StrEnum):
    ARCHIVED = "archived"
    EXPIRED = "expired"
    PUBLISHED = "published"
    COPYING = "copying"  # another invocation holds the job's copy lease
    NOTHING_TO_DO = "nothing_to_do"


class ArchiveFailed(Exception):
    """The copy did not succeed this time; the hand-off should be delivered again after `delay`."""

    def __init__(self, reason: str, delay: timedelta) -> None:
        super().__init__(reason)
        self.delay = delay


class AddressRefused(Exception):
    """The video's address refused every try, fresh addresses included, and the provider's record
    offers none any more."""


@dataclass(frozen=True)
class ArchiveService:
    store: JobStore
    archive: VideoArchive
    provider: Provider
    finisher: Finisher
    metrics: Metrics
    policy: Policy
    clock: Clock
    sleep: Callable[[float], None] = time.sleep

    def archive_job(
        self, request_id: str, receive_count: int = 1, seconds_left: Callable[[], float] = lambda: math.inf
    ) -> ArchiveOutcome:
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
        now = self.clock()
        if not job.lease_expired(now):
            logger.info("another invocation is copying this video")
            return ArchiveOutcome.COPYING
        if self.finisher.end_if_too_late_to_copy(job, now):
            return ArchiveOutcome.EXPIRED
        # The copy lease: while it runs, the poll's watchdog leaves the job alone (a new version
        # would fail this copy's save), and another hand-off of it copies nothing. It is short,
        # and renewed while the copy runs, so that a copy whose invocation died is taken over
        # minutes later, not when the function's whole timeout would have run out.
        lease_until = now + self.policy.copy_lease
        copying = job.leased(now, lease_until, check_at=lease_until)
        try:
            self.store.save(copying)
        except StaleJob:
            return ArchiveOutcome.NOTHING_TO_DO  # moved meanwhile, by a watchdog that sent it again
        lease = _KeptLease(self.store, self.policy, self.clock, copying)
        # The thumbnail first: once the video is copied, nothing stands between it and its
        # record, so an invocation that dies after the copy leaves no finished video waiting.
        thumbnail = self._copy_thumbnail(copying, seconds_left)
        try:
            copied = self._copy(copying, seconds_left, lease.keep_alive)
        except AddressRefused as error:
            self.finisher.fail(lease.job, ErrorCode.EXPIRED, str(error), self.clock())
            self.metrics.count("AddressesRefused")
            return ArchiveOutcome.EXPIRED
        except Exception as error:
            return self._copy_failed(lease.job, error, receive_count)
        self.metrics.count("ArchiveBytes", copied.video.size, unit="Bytes")
        self._commit(lease.job, copied.video, thumbnail, self._delivered(job, copied))
        return ArchiveOutcome.ARCHIVED

    def _delivered(self, job: Job, copied: ArchivedVideo) -> Delivered | None:
        """What the file says of itself, against what was asked (None when it says nothing)."""
        if copied.facts is None:
            return None
        found = delivered(job.request, copied.facts)
        if not found.matches_request:
            logger.warning("the video delivered is not what was asked", extra={"differences": found.differences})
            self.metrics.count("DeliveredMismatches")
        return found

    def _copy_thumbnail(self, job: Job, seconds_left: Callable[[], float]) -> ThumbnailObject | None:
        """The provider's still of the video beside it, best effort: any failure, or too little
        time left, and the video's event goes out without it."""
        if job.thumbnail_url is None:
            return None
        budget = self.policy.thumbnail_time.total_seconds()
        if seconds_left() < budget + _TIME_FOR_A_TRY.total_seconds() + _TIME_TO_COMMIT.total_seconds():
            logger.warning("too little time left to copy the thumbnail; the event goes without it")
            self.metrics.count("ThumbnailsMissed")
            return None
        try:
            thumbnail = self.archive.copy_thumbnail(
                job.thumbnail_url, self.policy.thumbnail_key(job.request_id), budget
            )
        except Exception as error:
            logger.warning("thumbnail not copied; the event goes without it", extra={"reason": str(error)})
            self.metrics.count("ThumbnailsMissed")
            return None
        self.metrics.count("ThumbnailsCopied")
        return thumbnail

    def _copy(self, job: Job, seconds_left: Callable[[], float], keep_alive: Callable[[], None]) -> ArchivedVideo:
        """Copy the video from the address its record gives now (an address is signed and
        short-lived; one may have been malformed), trying again after a pause when time allows:
        after a transient fault, and after a refusal with a fresh address from the provider.
        Raises AddressRefused when every try was refused and the record offers no address any
        more; else the last fault (the hand-off comes again while the deadline allows)."""
        assert job.video_url is not None
        url, refusals = self._fresh_address(job, job.video_url) or job.video_url, 0
        pauses = self.policy.archive_pauses
        for pause in (*pauses, None):  # None: the last try
            try:
                key = self.policy.archive_key(job.request_id)
                # Whole within the invocation, leaving it the time to commit.
                within = seconds_left() - _TIME_TO_COMMIT.total_seconds()
                return self.archive.copy(url, key, full_media_type(job.media_type), within, keep_alive)
            except (MediaGone, MediaNotAllowed) as error:
                refusals += 1
                if refusals > len(pauses) and self._fresh_address(job, url) is None:
                    raise AddressRefused(
                        f"the video's address refused the download {refusals} times, and the provider's"
                        f" record offers no other: {error}"
                    ) from error
                logger.warning("video address refused", extra={"reason": str(error)})
                fault: Exception = error
            except Exception as error:
                logger.warning("copy failed", extra={"reason": str(error)})
                fault = error
            if pause is None or seconds_left() < (pause + _TIME_FOR_A_TRY).total_seconds():
                raise fault
            self.sleep(pause.total_seconds())
            keep_alive()
            if refusals:
                url = self._fresh_address(job, url) or url
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _fresh_address(self, job: Job, known: str) -> str | None:
        """The video's address as the provider gives it now (an address may be signed and
        short-lived), None when its record offers none; `known`, the latest address read, when
        the record cannot be read (it may still work)."""
        try:
            record = self.provider.status(job.generation.uuid)
        except ProviderUnavailable as error:
            logger.warning("could not read the status for a fresh address", extra={"reason": str(error)})
            return known
        return record.video_url if record.ready else None

    def _copy_failed(self, job: Job, error: Exception, receive_count: int) -> ArchiveOutcome:
        """No copy this time: the job ends if it is too late for another, or else its lease is
        given back and the hand-off comes again soon (not after the queue's visibility timeout)."""
        now = self.clock()
        if self.finisher.end_if_too_late_to_copy(job, now, str(error)):
            return ArchiveOutcome.EXPIRED
        released = job.leased(now, None, check_at=self.policy.handoff_check(now, job.expired_at))
        self.store.save(released)
        raise ArchiveFailed(str(error), self.policy.archive_retry_delay(receive_count)) from error

    def _commit(self, job: Job, video: VideoObject, thumbnail: ThumbnailObject | None, found: Delivered | None) -> None:
        """Record the copy and announce it, on the latest version of the job."""
        for _ in range(_COMMIT_TRIES):
            try:
                self.finisher.archive(job, video, self.clock(), thumbnail, found)
                return
            except StaleJob:
                latest = self.store.get(job.request_id)
                if latest is None or latest.state.final:
                    logger.info("the job was ended by another invocation", extra={"video_key": video.key})
                    return
                job = latest
        raise ArchiveFailed("the job kept changing while its copy was recorded", timedelta(0))


class _KeptLease:
    """A copy's lease, renewed as the copy's bytes come (`keep_alive`): once half of it has
    passed, the next read renews it. A Lambda invocation cannot be told it is about to die;
    a lease that must be renewed ends with it. `job` is the job's latest version, for the
    writes after the copy."""

    def __init__(self, store: JobStore, policy: Policy, clock: Clock, job: Job) -> None:
        self.job = job
        self._store, self._policy, self._clock = store, policy, clock
        self._renewed_at = clock()
        self._lost = False

    def keep_alive(self) -> None:
        now = self._clock()
        if self._lost or now - self._renewed_at < self._policy.copy_lease / 2:
            return
        until = now + self._policy.copy_lease
        renewed = self.job.leased(now, until, check_at=until)
        try:
            self._store.save(renewed)
        except StaleJob:
            self._lost = True  # moved by someone else: the copy's own record will say so
            return
        except Exception:
            logger.exception("the copy's lease could not be renewed; the next read tries again")
            return
        self.job, self._renewed_at = renewed, now
