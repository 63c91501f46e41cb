"""Poll: on a schedule, checks every job whose next status call is due."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sora_relay.invocation import seconds_left
from sora_relay.observability import logger, metrics, tracer
from sora_relay.triggers import ScheduledEvent
from sora_relay.wiring import poll_service


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    schedule = ScheduledEvent.model_validate(event)
    logger.debug("scheduled sweep", extra={"scheduled_at": schedule.time.isoformat()})
    poll_service().tend_line()
    outcomes = poll_service().sweep_while(seconds_left(context))
    # The poller-silent alarm breaches when this is missing: a poll that never ran or never finished.
    metrics.add_metric(name="PollsCompleted", unit=MetricUnit.Count, value=1)
    return {outcome.value: count for outcome, count in outcomes.items()}
