"""The archive queue's message: which completed job to copy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sora_relay.request import RequestId


class ArchiveHandOff(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: RequestId
