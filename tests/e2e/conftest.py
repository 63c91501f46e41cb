"""Shared by the end-to-end tests of one module: a provider double and a local stack that outlive each test."""

from collections.abc import Iterator

import pytest

from sora_relay.local.stack import LocalStack, Provider
from sora_relay.simulator import GeminiGenSimulator

from ..conftest import TEMPLATE


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[GeminiGenSimulator]:
    with GeminiGenSimulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def local_stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    """The template deployed into moto's server, driven as Lambda would, for one module."""
    provider = Provider(module_simulator.base_url, module_simulator.api_key)
    with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters={"PollIntervalSeconds": "1"}) as stack:
        yield stack
