"""A deployed stack as the client finds it: its CloudFormation outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sora_relay_tools.client.errors import StackNotFound

# The outputs the client reads; the template declares each.
_REQUIRED_OUTPUTS = ("RequestQueueUrl", "CompletionTopicArn", "ArchiveBucketName", "JobsTableName", "InputLocation")
# The most messages one SQS call takes or gives.
SQS_BATCH = 10
# Each dead-letter queue and the queue its messages came from.
DEAD_LETTER_QUEUES = {
    "requests": ("RequestDeadLetterQueueUrl", "RequestQueueUrl"),
    "archive": ("ArchiveDeadLetterQueueUrl", "ArchiveQueueUrl"),
    "sweeps": ("SweepDeadLetterQueueUrl", "SweepQueueUrl"),
    # Moved back, an event is delivered again, for another 24 hours.
    "webhooks": ("WebhookDeadLetterQueueUrl", "WebhookQueueUrl"),
}


@dataclass(frozen=True)
class StackResources:
    outputs: Mapping[str, str]

    @classmethod
    def of(cls, outputs: Mapping[str, str]) -> StackResources:
        missing = [name for name in _REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise StackNotFound(f"the stack has no output {', '.join(missing)}: is it a sora-relay stack?")
        return cls(dict(outputs))

    def __getitem__(self, name: str) -> str:
        return self.outputs[name]


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    url: str
    source_url: str
    depth: int
