"""What a handler tells the domain of its own invocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def seconds_left(context: LambdaContext) -> Callable[[], float]:
    """The invocation's remaining time in seconds, read afresh at each call."""
    return lambda: context.get_remaining_time_in_millis() / 1000
