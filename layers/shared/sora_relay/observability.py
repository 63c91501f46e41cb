"""Powertools' logger, metrics and tracer, shared by every function of the stack."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "sora-relay"
METRICS_NAMESPACE = "SoraRelay"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=METRICS_NAMESPACE)
tracer = Tracer(service=SERVICE)


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
