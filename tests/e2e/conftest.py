"""The end-to-end fixtures: a provider double and a local stack that outlive each test of a module."""

from collections.abc import Iterator
from typing import Any

import pytest

from sora_relay_tools.faults.crash import CrashDrill
from sora_relay_tools.faults.suites import quiet
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import GeminiGenSimulator

from ..support.aws import load_function
from ..support.fixtures import aws_credentials, simulator, stack  # noqa: F401  (shared fixtures)
from ..support.paths import TEMPLATE


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[GeminiGenSimulator]:
    with GeminiGenSimulator() as provider:
        yield provider


@pytest.fixture(scope="module")
def local_stack(module_simulator: GeminiGenSimulator) -> Iterator[LocalStack]:
    """The template deployed into moto's server, driven as Lambda would, for one module."""
    provider = Provider(module_simulator.base_url, module_simulator.api_key)
    with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters={"PollIntervalSeconds": "1"}) as local:
        yield local


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    return {name: load_function(f"{name.capitalize()}Function") for name in ("submit", "poll", "archive")}


@pytest.fixture(scope="module")
def crash_drill() -> Iterator[CrashDrill]:
    """The crash drill (the template on moto in this process, its clock driven), for one module."""
    with quiet(), CrashDrill(TEMPLATE) as drill:
        yield drill
