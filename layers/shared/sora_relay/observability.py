"""Powertools' logger, metrics and tracer, shared by every function of the stack."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

SERVICE = "sora-relay"
METRICS_NAMESPACE = "SoraRelay"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=METRICS_NAMESPACE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


class LazyTracer:
    """Powertools' Tracer, made when a handler first runs, and only when tracing is on.

    Making one imports the X-Ray SDK, whose sampler makes a botocore client of its own at import
    (about 0.15 s): work a cold start's import need not do, and a function whose tracing is off
    (`POWERTOOLS_TRACE_DISABLED`, as on the local stack) never does at all."""

    def __init__(self, service: str) -> None:
        self._service = service

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = handler if tracing_disabled() else self._tracer().capture_lambda_handler(handler)
            return traced(event, context)

        return run  # type: ignore[return-value]  # the same signature, wrapped

    def _tracer(self) -> Any:
        from aws_lambda_powertools import Tracer

        return Tracer(service=self._service)


def tracing_disabled() -> bool:
    """Powertools' own switch, read by Powertools' own function."""
    return resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false"))


tracer = LazyTracer(SERVICE)


class PowertoolsMetrics:
    """The domain's Metrics port on CloudWatch embedded metric format."""

    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        """Counted under the service; with `dimensions`, also under those: the dashboard breaks
        a total down (failures by code) while alarms read the total itself."""
        metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
        if not dimensions:
            return
        # A dimension that differs per data point (such as an error code) needs its own metric set.
        with single_metric(
            name=name,
            unit=MetricUnit(unit),
            value=value,
            namespace=metrics.namespace,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            for dimension, dimension_value in dimensions.items():
                metric.add_dimension(name=dimension, value=dimension_value)


@contextlib.contextmanager
def record_failures(*expected: type[BaseException]) -> Iterator[None]:
    """An exception escaping one record's handling, other than an `expected` one (a retry the
    handler asked for), is logged at error level with the record's keys (its request_id) and
    counted: Powertools' batch utility turns it into a batch-item failure and logs it at debug
    level only, and the invocation itself succeeds, so no Errors alarm would say so."""
    try:
        yield
    except expected:
        raise
    except Exception:
        logger.exception("a record failed unexpectedly; SQS will deliver it again")
        metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
        raise
