"""SNS for the completion events, SQS for the archive hand-off and request retries."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from sora_relay.domain.events import VideoEvent
from sora_relay.domain.handoff import ArchiveHandOff, ShardSweep
from sora_relay.domain.request import VideoRequest
from sora_relay.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

# SQS hides a message for at most 12 hours.
_LONGEST_VISIBILITY = timedelta(hours=12)
# and delays a new one by at most 15 minutes.
_LONGEST_DELAY = timedelta(minutes=15)


def _visibility(delay: timedelta) -> int:
    """A delay as SQS takes a visibility timeout: whole seconds, from 0 to its 12 hours."""
    return max(int(min(delay, _LONGEST_VISIBILITY).total_seconds()), 0)


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
        self._client.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=_visibility(delay)
        )

    def kept_hidden(self, receipt_handles: list[str], lease: timedelta) -> KeptHidden:
        """A batch's messages hidden for `lease` at a time, renewed while they are handled (see
        KeptHidden), rather than for the queue's whole visibility timeout."""
        return KeptHidden(self, receipt_handles, lease)

    def hide_for(self, receipt_handles: list[str], delay: timedelta) -> None:
        """Keep messages hidden for `delay` from now."""
        seconds = _visibility(delay)
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


class SqsWebhookQueue(_SqsQueue):
    """The webhook queue: a delivery that failed comes again after its backoff (`delay`)."""


class SqsSweepQueue(_SqsQueue):
    def fan_out(self, shards: list[int]) -> None:
        for start in range(0, len(shards), 10):
            entries = [
                {"Id": str(shard), "MessageBody": ShardSweep(shard=shard).model_dump_json()}
                for shard in shards[start : start + 10]
            ]
            self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]


class KeptHidden:
    """A batch's messages hidden a short lease at a time, renewed on a thread every half lease
    while any is still being handled: should the invocation die (a timeout, a crash), they come
    back a lease after it, not after the queue's visibility timeout (six times the function's, as
    Lambda asks). A message is `done` once handled (before its own retry delay is set, which
    no renewal may then overwrite). No library keeps an SQS batch's visibility this way (the
    batch utility leaves it to the queue), hence by hand; each renewal is one batch call."""

    def __init__(self, queue: _SqsQueue, receipt_handles: list[str], lease: timedelta) -> None:
        self._queue = queue
        self._pending = set(receipt_handles)
        self._lease = lease
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="visibility", daemon=True)

    def __enter__(self) -> KeptHidden:
        self._queue.hide_for(sorted(self._pending), self._lease)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join()

    def done(self, receipt_handle: str) -> None:
        with self._lock:
            self._pending.discard(receipt_handle)

    def _renew(self) -> None:
        while not self._stopped.wait(self._lease.total_seconds() / 2):
            with self._lock:
                pending = sorted(self._pending)
                if pending:
                    try:
                        self._queue.hide_for(pending, self._lease)
                    except Exception:
                        # Kept hidden until the lease ends; the next renewal tries again.
                        logger.exception("a batch's messages could not be kept hidden")
