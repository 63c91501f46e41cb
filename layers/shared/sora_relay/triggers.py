"""What triggers the functions: an EventBridge scheduled event and an SQS record, as much of
each as the functions read.

Small models of our own rather than Powertools' parser models: importing those (every event
source's models, built at import) costs each function about 0.1 s of every cold start, and
each needs one. Powertools' batch utility validates a record with any pydantic model (its
type hints name only its own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, populate_by_name=True)

    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    time: datetime


class QueueRecordAttributes(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    ApproximateReceiveCount: int
    SentTimestamp: datetime | None = None  # epoch milliseconds, as SQS gives it


class QueueRecord(BaseModel):
    """An SQS record in the field names SQS gives it (the names the batch utility reads); each
    function's own record says what its `body` holds."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    messageId: str
    receiptHandle: str
    attributes: QueueRecordAttributes


class QueueBatch:
    """Powertools' batch utility over one function's SQS records (each validated as `record`; a
    batch whose every record failed is reported like any other), loaded when the function first
    runs: it imports asyncio and every event source's data classes, a third of boto3's import,
    which benchmark 5 reports beside the handlers' imports. `concurrent`: records are awaited."""

    def __init__(self, record: type[QueueRecord], *, concurrent: bool = False) -> None:
        self._record = record
        self._concurrent = concurrent

    @cached_property
    def _processor(self) -> Any:
        from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, BatchProcessor, EventType

        kind = AsyncBatchProcessor if self._concurrent else BatchProcessor
        # Any pydantic model validates a record; its type hints name only its own (the module says why).
        return kind(event_type=EventType.SQS, model=self._record, raise_on_entire_batch_failure=False)  # type: ignore[arg-type]

    def process(self, event: dict[str, Any], handle: Callable[[Any], Any], context: Any) -> PartialItemFailureResponse:
        from aws_lambda_powertools.utilities.batch import async_process_partial_response, process_partial_response

        process = async_process_partial_response if self._concurrent else process_partial_response
        return process(event=event, record_handler=handle, processor=self._processor, context=context)
