"""Shared by every tier: the tier markers, from the folders, the functions' logs, and one
botocore data loader for every session."""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

from sora_relay.observability import logger

TIERS = ("unit", "integration", "e2e", "infrastructure")

# Each boto3 session reads botocore's service models and endpoints (megabytes of JSON) again
# into a loader of its own; the suite makes a session per test, stack and drill run, and spent
# a twentieth of its time parsing the same files. One loader (it caches what it read) serves
# them all: what it holds is the files' content, the same for every session.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every line the functions log (JSON, as CloudWatch would receive it), at DEBUG."""
    sink = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original = handler.setStream(sink)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield sink
    finally:
        handler.setStream(original)
        logger.setLevel(level)
