"""What triggers the functions: an EventBridge scheduled event and an SQS record, as much of
each as the functions read.

Small models of our own rather than Powertools' parser models: importing those (every event
source's models, built at import) costs each function about 0.1 s of every cold start, and
each needs one. Powertools' batch utility validates a record with any pydantic model (its
type hints name only its own)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
