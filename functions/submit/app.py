"""Submit: reads the request queue, submits each request to the provider once."""

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sora_relay.adapters.messaging import KeptHidden
from sora_relay.invocation import seconds_left
from sora_relay.observability import logger, metrics, record_failures, tracer
from sora_relay.services.submit.messages import InboundMessage, Retry
from sora_relay.triggers import QueueBatch, QueueRecord
from sora_relay.wiring import request_queue, submit_service, submit_workers

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# A batch's messages are hidden this long at a time while they are handled: should the
# invocation die, they come back this soon.
HIDDEN_LEASE = timedelta(seconds=60)


class RequestRecord(QueueRecord):
    body: str  # read by the domain, which turns an invalid body into its failure event


# The records of a batch are handled concurrently (each in a worker thread: the domain is synchronous).
batch = QueueBatch(RequestRecord, concurrent=True)


class SubmitLater(Exception):
    """Marks the record as a batch-item failure: SQS delivers it again after its visibility timeout."""


def handle_record(record: RequestRecord, time_left: Callable[[], float], hidden: KeptHidden) -> None:
    message = InboundMessage(
        message_id=record.messageId,
        body=record.body,
        receive_count=record.attributes.ApproximateReceiveCount,
        seconds_left=time_left,
    )
    try:
        with record_failures():
            result = submit_service().handle(message)
    finally:
        logger.thread_safe_remove_keys(["request_id"])
        hidden.done(record.receiptHandle)
    if isinstance(result, Retry):
        request_queue().delay(record.receiptHandle, result.delay)
        raise SubmitLater(result.reason)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    time_left = seconds_left(context)
    submit_service()  # the settings and the wiring, checked before any record: a bad environment fails loudly
    handles = [record["receiptHandle"] for record in event.get("Records", [])]
    with request_queue().kept_hidden(handles, HIDDEN_LEASE) as hidden:

        async def handle_concurrently(record: RequestRecord) -> None:
            import asyncio  # loaded by the batch utility, with the first batch: not at init

            loop = asyncio.get_running_loop()
            await loop.run_in_executor(submit_workers(), handle_record, record, time_left, hidden)

        return batch.process(event, handle_concurrently, context)
