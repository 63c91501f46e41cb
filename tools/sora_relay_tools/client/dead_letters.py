"""The stack's dead-letter queues: how deep each is, and moving their messages back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from sora_relay_tools.client.errors import RelayError
from sora_relay_tools.client.stack import DEAD_LETTER_QUEUES, SQS_BATCH, DeadLetterQueue, StackResources

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def dead_letter_queues(sqs: SQSClient, resources: StackResources) -> list[DeadLetterQueue]:
    queues = []
    for name, (dead_letter_output, source_output) in DEAD_LETTER_QUEUES.items():
        url = resources.outputs.get(dead_letter_output)
        if url is None:
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]
        depth = int(attributes["ApproximateNumberOfMessages"])
        queues.append(DeadLetterQueue(name, url, resources[source_output], depth))
    return queues


def redrive(sqs: SQSClient, queue: DeadLetterQueue, on_moved: Callable[[int], None]) -> int:
    """Move every message of a dead-letter queue back to its source queue; returns how many.

    By hand, not SQS's StartMessageMoveTask: a moved message gets a new message id, and a
    request without its own `request_id` is known by its message id, so each request is
    given its original id first (a move must not become a second, paid job)."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=SQS_BATCH, VisibilityTimeout=60, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return moved
        entries = [
            {"Id": str(index), "MessageBody": _with_request_id(message["Body"], message["MessageId"])}
            if queue.name == "requests"
            else {"Id": str(index), "MessageBody": message["Body"]}
            for index, message in enumerate(messages)
        ]
        sent = sqs.send_message_batch(QueueUrl=queue.source_url, Entries=entries)  # type: ignore[arg-type]
        done = [messages[int(entry["Id"])] for entry in sent.get("Successful", [])]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        on_moved(len(done))
        if sent.get("Failed"):
            raise RelayError(f"SQS refused {len(sent['Failed'])} messages; they stay in {queue.name}")


def _with_request_id(body: str, message_id: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body  # an unreadable body stays as it was: it fails again, as invalid_request
    if isinstance(parsed, dict) and "request_id" not in parsed:
        parsed["request_id"] = message_id
        return json.dumps(parsed)
    return body
