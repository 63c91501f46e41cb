"""Copies that cannot be made: the job ends as expired, within the invocation or at expired_at."""

from datetime import timedelta

import boto3
import pytest

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.geminigen import GeminiGenClient, make_http_client
from sora_relay.adapters.media.archive import S3VideoArchive
from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.media.policy import MediaPolicy
from sora_relay.adapters.messaging import SnsEventPublisher
from sora_relay.domain.events import ProviderSummary, iso_utc
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.observability import PowertoolsMetrics
from sora_relay.services.archive import ArchiveFailed, ArchiveOutcome, ArchiveService
from sora_relay.services.finisher import Finisher
from sora_relay_tools.simulator import Fault, GeminiGenSimulator, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def expiring(stack, clock):
    with GeminiGenSimulator(clock=clock, expire_after=timedelta(hours=1)) as simulator:
        yield simulator


@pytest.fixture
def service(stack, clock, expiring) -> ArchiveService:
    store = DynamoJobStore(boto3.client("dynamodb"), stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    policy = Policy()
    metrics = PowertoolsMetrics()
    finisher = Finisher(store, SnsEventPublisher(boto3.client("sns"), stack.topic_arn), metrics, policy)
    archive = S3VideoArchive(boto3.client("s3"), vetted_client(MediaPolicy.parse("", expiring.base_url)), stack.bucket)
    provider = GeminiGenClient(make_http_client(timeout=2), expiring.base_url, lambda: expiring.api_key)
    return ArchiveService(store, archive, provider, finisher, metrics, policy, clock, sleep=lambda _: None)


@pytest.fixture
def completed(service, clock, expiring) -> str:
    """A finished generation's job, handed to the archiver."""
    generation = expiring._submit({"prompt": "a tide coming in"}, [])[1]
    now = clock()
    service.store.create(
        Job(
            request_id="tide",
            state=JobState.COMPLETED,
            fingerprint="f",
            created_at=now,
            updated_at=now,
            completed_at=now,
            provider=ProviderSummary(uuid=generation["uuid"], expired_at=iso_utc(now + timedelta(hours=1))),
            video_url=f"{expiring.base_url}/media/{generation['uuid']}.mp4",
            media_type="video/mp4",
        )
    )
    return "tide"


def test_address_expiring_after_broken_copies_ends_as_expired(stack, clock, expiring, service, completed) -> None:
    expiring.inject("media", *[Fault(truncate_at=5000)] * 3)
    with pytest.raises(ArchiveFailed, match="broke off"):
        service.archive_job(completed)
    clock.advance(timedelta(hours=2))
    assert service.archive_job(completed) is ArchiveOutcome.EXPIRED
    [event] = stack.events()
    assert event["body"]["error"]["code"] == "expired"
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 0


def test_an_address_refusing_while_the_record_still_offers_it_is_tried_again_never_expired(
    stack, expiring, service, completed
) -> None:
    expiring.inject("media", *[Fault(status=403)] * 3)
    with pytest.raises(ArchiveFailed):
        service.archive_job(completed)
    assert stack.events() == []
    assert service.archive_job(completed) is ArchiveOutcome.ARCHIVED
    [event] = stack.events()
    assert event["body"]["event"] == "video.completed"


def test_address_refused_once_is_copied_from_the_fresh_status(stack, expiring, service, completed) -> None:
    expiring.inject("media", Fault(status=410))
    assert service.archive_job(completed) is ArchiveOutcome.ARCHIVED
    [event] = stack.events()
    assert event["body"]["event"] == "video.completed"
