"""The internal queues' messages: which completed job to copy; which index shard to sweep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sora_relay.domain.request import RequestId


class ArchiveHandOff(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    request_id: RequestId


class ShardSweep(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    shard: int
