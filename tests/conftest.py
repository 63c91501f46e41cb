"""Shared by every tier: the tier markers, from the folders, and the functions' logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sora_relay.observability import logger

TIERS = ("unit", "integration", "e2e", "infrastructure")


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
