"""The Python client: send requests to a deployed stack, follow them, fetch their videos.

    relay = Relay.from_stack("sora-relay")
    job = relay.submit("A lighthouse at dawn", model="sora-2-pro")
    event = job.wait()
    job.download("out/")

It finds the stack's resources from its CloudFormation outputs, so it works the same against
AWS and against anything that speaks its API (the local stack, through `AWS_ENDPOINT_URL`).
"""

from sora_relay.services.cancel import Canceled
from sora_relay_tools.client.errors import (
    CannotCancel,
    JobNotFound,
    NotArchived,
    RelayError,
    StackNotFound,
    WaitTimedOut,
)
from sora_relay_tools.client.event_stream import EventStream
from sora_relay_tools.client.handles import JobHandle
from sora_relay_tools.client.relay import Rejected, Relay
from sora_relay_tools.client.stack import DEAD_LETTER_QUEUES, DeadLetterQueue, StackResources

__all__ = [
    "DEAD_LETTER_QUEUES",
    "Canceled",
    "CannotCancel",
    "DeadLetterQueue",
    "EventStream",
    "JobHandle",
    "JobNotFound",
    "NotArchived",
    "Rejected",
    "Relay",
    "RelayError",
    "StackNotFound",
    "StackResources",
    "WaitTimedOut",
]
