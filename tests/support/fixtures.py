"""Fixtures of the tiers that talk to AWS and the provider: moto in-process and the simulator.

A tier's conftest.py imports the ones it uses (importing a fixture is how pytest shares it
without loading it in every tier)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from sora_relay import wiring
from sora_relay_tools.simulator import GeminiGenSimulator

from .aws import API_KEY, REGION, SECRET_NAME, Stack, create_stack


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def simulator() -> Iterator[GeminiGenSimulator]:
    with GeminiGenSimulator(api_key=API_KEY) as sim:
        yield sim


@pytest.fixture
def stack(aws_credentials: None, simulator: GeminiGenSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        stack = create_stack()
        environment = {
            "JOBS_TABLE_NAME": stack.table_name,
            "COMPLETION_TOPIC_ARN": stack.topic_arn,
            "ARCHIVE_BUCKET_NAME": stack.bucket,
            "ARCHIVE_QUEUE_URL": stack.archive_queue_url,
            "REQUEST_QUEUE_URL": stack.request_queue_url,
            "SWEEP_QUEUE_URL": stack.sweep_queue_url,
            "GEMINIGEN_BASE_URL": simulator.base_url,
            "GEMINIGEN_API_KEY_SECRET": SECRET_NAME,
            "ALLOWED_MEDIA_HOSTS": "*.geminigen.ai",
            "POLL_INTERVAL_SECONDS": "1",
            "ARCHIVE_PART_SIZE_MIB": "5",
            "REFERENCE_BUCKETS": stack.bucket,
            "POLL_SWEEP_WINDOW_SECONDS": "0",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        yield stack
        wiring.reset()
