"""The HTTP API's keys and each key's requests, through boto3 against moto: a key found by its
hash only, a name never used twice (even when the answer to its creation was lost), revoked
keys kept as revoked, calls counted per minute, a key's requests paged newest first."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.key_videos import DynamoKeyVideos
from sora_relay.adapters.keys import DynamoKeys
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.keys import ApiKey, key_hash

from ..support.aws import REGION, answers_lost, create_stack
from ..support.template import load_template

NOW = datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def keys(aws_credentials) -> DynamoKeys:
    with mock_aws():
        table = load_template()["Resources"]["ApiKeysTable"]["Properties"]
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="keys",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
        )
        yield DynamoKeys(client, "keys")


def test_a_key_is_found_by_its_secrets_hash_and_its_name_is_never_used_twice(keys) -> None:
    assert keys.create(ApiKey(name="alice", created_at=NOW), key_hash("sr-one"))
    assert keys.by_hash(key_hash("sr-one")) == ApiKey(name="alice", created_at=NOW)
    assert not keys.create(ApiKey(name="alice", created_at=NOW), key_hash("sr-two"))
    assert keys.by_hash(key_hash("sr-two")) is None


def test_the_table_never_holds_a_secret(keys) -> None:
    keys.create(ApiKey(name="alice", created_at=NOW), key_hash("sr-secret"))
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName="keys")["Items"]
    assert "sr-secret" not in str(items)


def test_a_creation_whose_answer_was_lost_is_still_reported_made(keys) -> None:
    carried_out = answers_lost(keys._client, "TransactWriteItems")
    assert keys.create(ApiKey(name="bob", created_at=NOW), key_hash("sr-bob"))
    assert len(carried_out) == 1
    assert keys.by_hash(key_hash("sr-bob")).name == "bob"


def test_a_revoked_key_reads_as_revoked_by_name_and_by_hash(keys) -> None:
    keys.create(ApiKey(name="carol", created_at=NOW), key_hash("sr-carol"))
    assert keys.revoke("carol", NOW + timedelta(hours=1))
    assert keys.by_hash(key_hash("sr-carol")).revoked_at == NOW + timedelta(hours=1)
    assert [(key.name, key.active) for key in keys.all()] == [("carol", False)]
    assert not keys.revoke("nobody", NOW)


def test_a_keys_calls_are_bounded_per_minute(keys) -> None:
    assert [keys.take_call("dave", NOW, 2) for _ in range(3)] == [True, True, False]
    assert keys.take_call("erin", NOW, 2)
    assert keys.take_call("dave", NOW + timedelta(minutes=1), 2)


def test_a_keys_requests_are_paged_newest_first_and_no_other_keys(aws_credentials) -> None:
    with mock_aws():
        stack = create_stack()
        client = boto3.client("dynamodb", region_name=REGION)
        store = DynamoJobStore(client, stack.table_name, shards=1, finished_ttl=timedelta(days=1))
        for n, key in enumerate(["alice", "alice", "bob", "alice", None]):
            at = NOW + timedelta(seconds=n)
            store.create(Job(f"r-{n}", JobState.RECEIVED, "f", at, at, key=key))
        listing = DynamoKeyVideos(client, stack.table_name)
        first = listing.page("alice", limit=2, after=None, newest_first=True)
        assert ([job.request_id for job in first.jobs], first.has_more) == (["r-3", "r-1"], True)
        rest = listing.page("alice", limit=2, after=first.jobs[-1], newest_first=True)
        assert ([job.request_id for job in rest.jobs], rest.has_more) == (["r-0"], False)
        assert [job.key for job in first.jobs] == ["alice", "alice"]


def test_a_keys_daily_credits_are_stored_with_it(keys) -> None:
    keys.create(ApiKey(name="frugal", created_at=NOW, daily_credits=250), key_hash("sr-frugal"))
    assert keys.by_hash(key_hash("sr-frugal")).daily_credits == 250


def test_a_keys_credits_are_counted_once_per_request_and_bounded_per_day(keys) -> None:
    day = NOW.date()
    assert keys.spend("frugal", "r-1", day, 60, 100)
    assert keys.spend("frugal", "r-1", day, 60, 100)  # the same request again: counted once
    assert not keys.spend("frugal", "r-2", day, 60, 100)
    assert keys.spend("frugal", "r-2", day, 40, 100)
    assert keys.spend("frugal", "r-3", day + timedelta(days=1), 60, 100)
    spent = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="keys", Key={"pk": {"S": f"spent#frugal#{day.isoformat()}"}}
    )["Item"]["spent"]["N"]
    assert float(spent) == 100


def test_a_count_whose_answer_was_lost_is_made_once(keys) -> None:
    carried_out = answers_lost(keys._client, "TransactWriteItems")
    assert keys.spend("frugal", "r-1", NOW.date(), 60, 100)
    assert len(carried_out) == 1
    assert not keys.spend("frugal", "r-2", NOW.date(), 60, 100)  # 60 counted once, not twice: 40 left
    assert keys.spend("frugal", "r-3", NOW.date(), 40, 100)
