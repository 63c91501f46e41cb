from datetime import UTC, datetime, timedelta

import boto3
import pytest

from sora_relay.adapters.dynamodb import DynamoJobStore, shard_of
from sora_relay.domain.events import ProviderSummary
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.ports import StaleJob
from sora_relay.domain.request import VideoRequest

from ..support.jobs import next_version

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(stack) -> DynamoJobStore:
    return DynamoJobStore(boto3.client("dynamodb"), stack.table_name, shards=4, finished_ttl=timedelta(days=30))


def job(request_id: str, **changes: object) -> Job:
    base = Job(
        request_id=request_id,
        state=JobState.RECEIVED,
        fingerprint="f" * 64,
        created_at=NOW,
        updated_at=NOW,
        request=VideoRequest.model_validate_json('{"prompt": "a fox", "model": "sora-2-pro"}'),
        metadata={"campaign": "spring"},
    )
    return next_version(base, NOW, **changes) if changes else base


def test_job_round_trips_through_the_table(store) -> None:
    original = job("ad-1")
    assert store.create(original)
    submitted = next_version(
        original,
        NOW,
        state=JobState.SUBMITTED,
        provider=ProviderSummary(uuid="sora_1", id=3, estimated_credit=75, expired_at="2026-11-30T00:00:00Z"),
        submitted_at=NOW,
        next_check_at=NOW + timedelta(seconds=30),
    )
    store.save(submitted)
    assert store.get("ad-1") == submitted


def test_second_create_of_a_request_id_is_refused(store) -> None:
    assert store.create(job("ad-1"))
    assert not store.create(job("ad-1"))


def test_save_over_a_newer_version_is_stale(store) -> None:
    original = job("ad-1")
    store.create(original)
    store.save(next_version(original, NOW, progress=10))
    with pytest.raises(StaleJob):
        store.save(next_version(original, NOW, progress=20))


def test_due_returns_only_due_jobs_of_the_shard(store) -> None:
    for index, offset in enumerate([-60, -1, 60]):
        request_id = f"ad-{index}"
        store.create(job(request_id))
        store.save(next_version(store.get(request_id), NOW, next_check_at=NOW + timedelta(seconds=offset)))
    found = {j.request_id for shard in range(4) for j in store.due(shard, NOW, 10).jobs}
    assert found == {"ad-0", "ad-1"}
    for shard in range(4):
        assert all(shard_of(j.request_id, 4) == shard for j in store.due(shard, NOW, 10).jobs)


def test_job_without_a_next_check_leaves_the_index(stack, store) -> None:
    store.create(job("ad-1"))
    store.save(next_version(store.get("ad-1"), NOW, next_check_at=NOW))
    store.save(next_version(store.get("ad-1"), NOW, next_check_at=None))
    scan = stack.dynamodb.scan(TableName=stack.table_name, IndexName="outstanding")
    assert scan["Count"] == 0


def test_finished_job_gets_a_time_to_live(stack, store) -> None:
    store.create(job("ad-1"))
    store.save(next_version(store.get("ad-1"), NOW, state=JobState.FAILED))
    expires_at = int(stack.job("ad-1")["expires_at"]["N"])
    assert expires_at == int((NOW + timedelta(days=30)).timestamp())


def test_attempt_round_trips_through_the_table(store) -> None:
    original = job("ad-1")
    store.create(original)
    attempt = next_version(original, NOW, attempt_started_at=NOW, attempt_reserved=37.5)
    store.save(attempt)
    assert store.get("ad-1") == attempt


def test_generation_is_owned_by_the_first_request_that_claims_it(store) -> None:
    assert store.own_generation("sora_1", "ad-1")
    assert not store.own_generation("sora_1", "ad-2")


def test_claiming_an_owned_generation_again_for_its_owner_succeeds(store) -> None:
    store.own_generation("sora_1", "ad-1")
    assert store.own_generation("sora_1", "ad-1")


def test_generation_owners_are_not_listed_as_jobs(store) -> None:
    store.create(job("ad-1"))
    store.own_generation("sora_1", "ad-1")
    assert [j.request_id for j in store.scan()] == ["ad-1"]


def test_shard_sweep_lease_is_one_holders_until_it_runs_out(store) -> None:
    later = NOW + timedelta(minutes=5)
    assert store.take_sweep(2, "poll", later, NOW)
    assert not store.take_sweep(2, "sweep", later, NOW + timedelta(minutes=1))
    assert store.take_sweep(2, "sweep", later + timedelta(minutes=5), later)


def test_shard_sweep_lease_given_back_can_be_taken_at_once(store) -> None:
    store.take_sweep(2, "poll", NOW + timedelta(minutes=5), NOW)
    store.end_sweep(2, "poll")
    assert store.take_sweep(2, "sweep", NOW + timedelta(minutes=5), NOW)


def test_giving_back_a_sweep_lease_taken_over_leaves_the_new_holder_its_lease(store) -> None:
    store.take_sweep(2, "poll", NOW, NOW - timedelta(minutes=5))
    store.take_sweep(2, "sweep", NOW + timedelta(minutes=5), NOW)
    store.end_sweep(2, "poll")
    assert not store.take_sweep(2, "another", NOW + timedelta(minutes=5), NOW)


def test_sweep_leases_are_not_listed_as_jobs(store) -> None:
    store.take_sweep(0, "poll", NOW, NOW)
    assert list(store.scan()) == []


def test_held_reason_and_completion_time_round_trip(store) -> None:
    original = job("ad-1")
    store.create(original)
    moved = next_version(original, NOW, held="the daily credit budget (10) has 0 credits left", completed_at=NOW)
    store.save(moved)
    assert store.get("ad-1") == moved


def test_write_that_landed_is_known_as_landed_whatever_the_number_format(stack, store) -> None:
    original = job("ad-1")
    store.create(original)
    attempt = next_version(original, NOW, attempt_started_at=NOW, attempt_reserved=30.0)
    # The write landed and its answer was lost; DynamoDB stores numbers normalized (30.0 reads
    # back as 30, where moto echoes 30.0), so the item is put here as DynamoDB would hold it.
    landed = {**store.to_item(attempt), "attempt_reserved": {"N": "30"}}
    stack.dynamodb.put_item(TableName=stack.table_name, Item=landed)
    store.save(attempt)  # its condition fails against itself: found stored, not stale
    assert store.get("ad-1").attempt_reserved == 30


def test_generation_owner_is_read_without_claiming(store) -> None:
    assert store.generation_owner("sora_1") is None
    store.own_generation("sora_1", "ad-1")
    assert store.generation_owner("sora_1") == "ad-1"


def test_recorded_prompt_is_taken_by_one_request_at_a_time(store) -> None:
    assert store.take_prompt("a fox", "ad-1", previous=None)
    assert not store.take_prompt("a fox", "ad-2", previous=None)
    assert store.prompt_holder("a fox") == "ad-1"
    assert store.take_prompt("a fox", "ad-2", previous="ad-1")
    assert not store.take_prompt("a fox", "ad-3", previous="ad-1")
    assert store.prompt_holder("a fox") == "ad-2"


def test_recorded_prompts_are_not_listed_as_jobs(store) -> None:
    store.take_prompt("a fox", "ad-1", previous=None)
    assert list(store.scan()) == []
