"""The poller's trigger: an EventBridge scheduled event, as much of it as the poller reads.

Its own small model rather than Powertools' parser models: importing those costs the poller
about 0.2 s of every cold start, and it needs none of the others."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    time: datetime
