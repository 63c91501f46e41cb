"""Webhook: POSTs each event of a request that names a callback_url to it, signed; a delivery
that failed comes again after its backoff, for 24 hours."""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sora_relay.observability import logger, metrics, record_failures, tracer
from sora_relay.services.webhooks import RetryIn
from sora_relay.triggers import QueueBatch, QueueRecord
from sora_relay.wiring import webhook_queue, webhooks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class EventRecord(QueueRecord):
    body: str  # the event as published: delivered byte for byte, as it was signed


batch = QueueBatch(EventRecord)


class DeliverLater(Exception):
    """Marks the record as a batch-item failure: it comes again after the backoff set for it."""


def handle_record(record: EventRecord) -> None:
    attributes = record.attributes
    with record_failures(DeliverLater):
        outcome = webhooks().deliver_queued(record.body, attributes.SentTimestamp, attributes.ApproximateReceiveCount)
        if isinstance(outcome, RetryIn):
            webhook_queue().delay(record.receiptHandle, outcome.delay)
            raise DeliverLater(outcome.reason)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    webhooks()  # the settings and the wiring, checked before any record: a bad environment fails loudly
    return batch.process(event, handle_record, context)
