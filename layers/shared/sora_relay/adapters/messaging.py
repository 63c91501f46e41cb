"""SNS for the completion events, SQS for the archive hand-off and request retries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from sora_relay.domain.events import VideoEvent
from sora_relay.domain.handoff import ArchiveHandOff, ShardSweep
from sora_relay.domain.request import VideoRequest

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

# SQS hides a message for at most 12 hours.
_LONGEST_VISIBILITY = timedelta(hours=12)
# and delays a new one by at most 15 minutes.
_LONGEST_DELAY = timedelta(minutes=15)


class SnsEventPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, event: VideoEvent) -> None:
        self._client.publish(
            TopicArn=self._topic_arn,
            Message=event.to_json(),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in event.attributes().items()
            },
        )


class _SqsQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipt_handle: str, delay: timedelta) -> None:
        """Deliver a received message again after `delay` (it failed)."""
        seconds = int(min(delay, _LONGEST_VISIBILITY).total_seconds())
        self._client.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(seconds, 0)
        )

    def hide_for(self, receipt_handles: list[str], delay: timedelta) -> None:
        """Keep a batch's messages hidden for `delay` only (the invocation's own time, and a
        margin), not the queue's whole visibility timeout: should the invocation die, they come
        back then. Best effort: a message not changed keeps the queue's timeout."""
        seconds = max(int(min(delay, _LONGEST_VISIBILITY).total_seconds()), 0)
        for start in range(0, len(receipt_handles), 10):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for index, handle in enumerate(receipt_handles[start : start + 10])
            ]
            self._client.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)


class SqsArchiveQueue(_SqsQueue):
    def enqueue(self, request_id: str) -> None:
        body = ArchiveHandOff(request_id=request_id).model_dump_json()
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)


class SqsRequestQueue(_SqsQueue):
    """The request queue: putting a claimed request back."""

    def resend(self, request_id: str, request: VideoRequest, delay: timedelta = timedelta(0)) -> None:
        body = json.dumps({**request.as_message(), "request_id": request_id})
        seconds = int(min(delay, _LONGEST_DELAY).total_seconds())
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body, DelaySeconds=seconds)


class SqsSweepQueue(_SqsQueue):
    def fan_out(self, shards: list[int]) -> None:
        for start in range(0, len(shards), 10):
            entries = [
                {"Id": str(shard), "MessageBody": ShardSweep(shard=shard).model_dump_json()}
                for shard in shards[start : start + 10]
            ]
            self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
