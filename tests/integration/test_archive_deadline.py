"""A copy that breaks off, then an address that expires before the retry: the job ends as expired."""

from datetime import timedelta

import boto3
import pytest

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.media import S3VideoArchive, make_media_client
from sora_relay.adapters.messaging import SnsEventPublisher
from sora_relay.events import ProviderSummary, iso_utc
from sora_relay.jobs import Job, JobState
from sora_relay.media_policy import MediaPolicy
from sora_relay.observability import PowertoolsMetrics
from sora_relay.services.archive import ArchiveFailed, ArchiveOutcome, ArchiveService
from sora_relay.services.lifecycle import Finisher
from sora_relay.services.policy import Policy
from sora_relay.simulator import Fault, GeminiGenSimulator, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def expiring(stack, clock):
    with GeminiGenSimulator(clock=clock, expire_after=timedelta(hours=1)) as simulator:
        yield simulator


def test_address_expiring_after_a_broken_copy_ends_as_expired(stack, clock, expiring) -> None:
    generation = expiring._submit({"prompt": "a tide coming in"}, [])[1]
    store = DynamoJobStore(boto3.client("dynamodb"), stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    policy = Policy()
    metrics = PowertoolsMetrics()
    finisher = Finisher(store, SnsEventPublisher(boto3.client("sns"), stack.topic_arn), metrics, policy)
    archive = S3VideoArchive(
        boto3.client("s3"), make_media_client(MediaPolicy.parse("", expiring.base_url)), stack.bucket
    )
    service = ArchiveService(store, archive, finisher, metrics, policy, clock)
    now = clock()
    store.create(
        Job(
            request_id="tide",
            state=JobState.COMPLETED,
            fingerprint="f",
            created_at=now,
            updated_at=now,
            provider=ProviderSummary(uuid=generation["uuid"], expired_at=iso_utc(now + timedelta(hours=1))),
            video_url=f"{expiring.base_url}/media/{generation['uuid']}.mp4",
            media_type="video/mp4",
        )
    )
    expiring.inject("media", Fault(truncate_at=5000))
    with pytest.raises(ArchiveFailed, match="broke off"):
        service.archive_job("tide")
    clock.advance(timedelta(hours=2))
    assert service.archive_job("tide") is ArchiveOutcome.EXPIRED
    [event] = stack.events()
    assert event["body"]["error"]["code"] == "expired"
    assert "HTTP 410" in event["body"]["error"]["message"]
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 0
