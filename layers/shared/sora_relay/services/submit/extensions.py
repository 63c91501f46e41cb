"""An extension's earlier video: ready to continue, not finished yet, or failed (docs/contract.md,
"Extending an earlier video")."""

from __future__ import annotations

from dataclasses import dataclass

from sora_relay.domain.events import ErrorCode
from sora_relay.domain.jobs import JobState
from sora_relay.domain.ports import JobStore


@dataclass(frozen=True)
class Ready:
    uuid: str  # the earlier generation's, the extension's `ref_history`


@dataclass(frozen=True)
class NotYet:
    reason: str


@dataclass(frozen=True)
class Failed:
    code: ErrorCode
    message: str


def extended_generation(store: JobStore, request_id: str) -> Ready | NotYet | Failed:
    """What the provider can continue of request `request_id`: its generation once finished."""
    earlier = store.get(request_id)
    if earlier is None:
        return Failed(ErrorCode.INVALID_REQUEST, f"extend: request {request_id!r} is no longer known to this stack")
    if earlier.state in (JobState.COMPLETED, JobState.ARCHIVED) and earlier.provider is not None:
        return Ready(earlier.provider.uuid)
    if earlier.state is JobState.FAILED:
        error = earlier.final_event.error if earlier.final_event is not None else None
        code = error.code if error is not None else ErrorCode.GENERATION_FAILED
        reason = error.message if error is not None else "no reason given"
        return Failed(code, f"extend: the video it extends (request {request_id}) failed: {reason}")
    return NotYet(f"waiting for request {request_id}, the video it extends, to finish")
