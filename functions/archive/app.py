"""Archive: copies each completed job's video into S3, then publishes its event."""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from sora_relay.domain.handoff import ArchiveHandOff
from sora_relay.invocation import seconds_left
from sora_relay.observability import logger, metrics, record_failures, tracer
from sora_relay.services.archive import ArchiveFailed
from sora_relay.triggers import QueueBatch, QueueRecord
from sora_relay.wiring import archive_queue, archive_service

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class ArchiveRecord(QueueRecord):
    body: Json[ArchiveHandOff]


batch = QueueBatch(ArchiveRecord)


def handle_record(record: ArchiveRecord, time_left: Callable[[], float]) -> None:
    logger.append_keys(request_id=record.body.request_id)
    receive_count = record.attributes.ApproximateReceiveCount
    try:
        with record_failures(ArchiveFailed):
            archive_service().archive_job(record.body.request_id, receive_count, time_left)
    except ArchiveFailed as failed:
        # The record fails, and comes again soon rather than after the visibility timeout.
        archive_queue().delay(record.receiptHandle, failed.delay)
        raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    archive_service()  # the settings and the wiring, checked before any record: a bad environment fails loudly
    return batch.process(event, functools.partial(handle_record, time_left=seconds_left(context)), context)
