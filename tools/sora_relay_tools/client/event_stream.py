"""The stack's events as they come, through a queue subscribed to its topic for the occasion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sora_relay.domain.events import VideoEvent
from sora_relay_tools.client.stack import SQS_BATCH


class EventStream:
    """The completion topic's events from now on, through a queue of its own that is removed on exit."""

    def __init__(
        self, sqs: Any, sns: Any, topic_arn: str, filter_policy: Mapping[str, list[Any]] | None = None
    ) -> None:
        self._sqs = sqs
        self._sns = sns
        self._topic_arn = topic_arn
        self._filter_policy = filter_policy
        self._queue_url: str | None = None
        self._subscription_arn: str | None = None

    def __enter__(self) -> EventStream:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _open(self) -> None:
        name = f"sora-relay-events-{uuid.uuid4().hex[:12]}"
        self._queue_url = self._sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true"})[
            "QueueUrl"
        ]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # Only this topic may send to the queue.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self._topic_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self._queue_url, Attributes={"Policy": json.dumps(policy)})
        attributes = {"RawMessageDelivery": "true"}
        if self._filter_policy:
            attributes["FilterPolicy"] = json.dumps(self._filter_policy)
        self._subscription_arn = self._sns.subscribe(
            TopicArn=self._topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def receive(self, wait_seconds: int = 1) -> list[VideoEvent]:
        """The events that arrived, waiting up to `wait_seconds` (SQS long polling) for the first."""
        assert self._queue_url is not None, "use the stream as a context manager"
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return [VideoEvent.model_validate_json(message["Body"]) for message in messages]

    def close(self) -> None:
        if self._subscription_arn is not None:
            self._sns.unsubscribe(SubscriptionArn=self._subscription_arn)
            self._subscription_arn = None
        if self._queue_url is not None:
            self._sqs.delete_queue(QueueUrl=self._queue_url)
            self._queue_url = None
