"""Shared by the end-to-end tests of one module: a provider double that outlives each test."""

from collections.abc import Iterator

import pytest

from sora_relay.simulator import GeminiGenSimulator


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[GeminiGenSimulator]:
    with GeminiGenSimulator() as simulator:
        yield simulator
