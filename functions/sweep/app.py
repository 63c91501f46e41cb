"""Sweep: one index shard's due jobs, handed over by a poll that could not check them all in time."""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from sora_relay.domain.handoff import ShardSweep
from sora_relay.invocation import seconds_left
from sora_relay.observability import logger, metrics, record_failures, tracer
from sora_relay.triggers import QueueBatch, QueueRecord
from sora_relay.wiring import poll_service

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class SweepRecord(QueueRecord):
    body: Json[ShardSweep]


batch = QueueBatch(SweepRecord)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    poll_service()  # the settings and the wiring, checked before any record: a bad environment fails loudly

    def sweep_shard(record: SweepRecord) -> None:
        # A backlog left when time runs out is handed on again by the sweep itself.
        with record_failures():
            poll_service().sweep_while(seconds_left(context), shards=[record.body.shard])

    return batch.process(event, sweep_shard, context)
