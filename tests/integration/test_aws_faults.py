"""Throttling and transient AWS errors are retried by the SDK's own standard retry mode."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.messaging import SnsEventPublisher
from sora_relay.domain.events import build_event
from sora_relay.domain.jobs import Job, JobState
from sora_relay.wiring import AWS_CONFIG

from ..support.jobs import next_version

NOW = datetime(2026, 11, 23, tzinfo=UTC)


class _Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._content


def throttle(client: Any, operation: str, times: int, status: int, body: bytes) -> list[str]:
    """Answer the first `times` calls of `operation` with an error response.

    moto still carries each of them out: like a write whose answer was lost on the way back."""
    attempts: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(operation)
        if len(attempts) > times:
            return None
        return AWSResponse(request.url, status, {"x-amzn-requestid": "throttled"}, _Body(body))

    client.meta.events.register_first(f"before-send.{client.meta.service_model.service_name}.{operation}", answer)
    return attempts


DYNAMO_THROTTLED = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
SNS_THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>x</RequestId></ErrorResponse>"
)


@pytest.fixture
def dynamodb(stack) -> Any:
    return boto3.client("dynamodb", config=AWS_CONFIG)


def job() -> Job:
    return Job(request_id="ad-1", state=JobState.RECEIVED, fingerprint="f", created_at=NOW, updated_at=NOW)


def test_throttled_table_write_is_retried_by_the_sdk(stack, dynamodb) -> None:
    attempts = throttle(dynamodb, "PutItem", times=2, status=400, body=DYNAMO_THROTTLED)
    store = DynamoJobStore(dynamodb, stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    assert store.create(job())
    assert len(attempts) == 3
    assert store.get("ad-1") is not None


def test_server_error_from_the_table_is_retried_by_the_sdk(stack, dynamodb) -> None:
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"oops"}'
    attempts = throttle(dynamodb, "PutItem", times=1, status=500, body=body)
    store = DynamoJobStore(dynamodb, stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    assert store.create(job())
    assert len(attempts) == 2


def test_throttling_that_outlasts_the_retries_surfaces(stack) -> None:
    impatient = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 2}))
    throttle(impatient, "PutItem", times=100, status=400, body=DYNAMO_THROTTLED)
    store = DynamoJobStore(impatient, stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    with pytest.raises(ClientError, match="ThrottlingException"):
        store.create(job())


def test_throttled_publish_is_retried_by_the_sdk(stack) -> None:
    sns = boto3.client("sns", config=AWS_CONFIG)
    attempts = throttle(sns, "Publish", times=2, status=400, body=SNS_THROTTLED)
    event = build_event(request_id="ad-1", occurred_at=NOW, request=None, provider=None, metadata={})
    SnsEventPublisher(sns, stack.topic_arn).publish(event)
    assert len(attempts) == 3
    received = stack.events()
    assert {event["body"]["event_id"] for event in received} == {"ad-1:video.failed"}


def test_lost_answer_to_a_conditional_save_is_not_a_conflict(stack, dynamodb) -> None:
    store = DynamoJobStore(dynamodb, stack.table_name, shards=1, finished_ttl=timedelta(days=1))
    store.create(job())
    throttle(dynamodb, "PutItem", times=1, status=500, body=b'{"__type":"InternalServerError"}')
    moved = next_version(store.get("ad-1"), NOW, progress=50)
    store.save(moved)
    assert store.get("ad-1") == moved
