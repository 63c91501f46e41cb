"""A request message as the submit service takes it, and what becomes of the message."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    body: str
    receive_count: int = 1
    seconds_left: Callable[[], float] = lambda: math.inf  # of the invocation handling it


@dataclass(frozen=True)
class Done:
    """The message is consumed."""


@dataclass(frozen=True)
class Retry:
    """The message should come again after `delay`."""

    delay: timedelta
    reason: str


SubmitResult = Done | Retry
