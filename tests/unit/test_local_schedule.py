import time
from typing import Any

import pytest

from sora_relay_tools.local.deploy import DeployedStack, QueueTrigger, ScheduleTrigger, schedule_interval
from sora_relay_tools.local.driver import LambdaDriver


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_schedules_become_intervals(expression: str, seconds: int) -> None:
    assert schedule_interval(expression) == seconds


def test_cron_schedules_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cron"):
        schedule_interval("cron(0 12 * * ? *)")


class ScriptedDriver(LambdaDriver):
    """The local driver with a handler that answers `checked` and counts its scheduled runs."""

    def __init__(self, checked: dict[str, int]) -> None:
        super().__init__(STACK, base_environment={}, schedule_interval=0.02)
        self.checked = checked
        self.runs = 0

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        if logical_id == "PollFunction":
            self.runs += 1
            return self.checked
        return {"batchItemFailures": []}


STACK = DeployedStack("local", {}, {}, [], [ScheduleTrigger("PollFunction", "rate(1 minute)", 60.0)])
SUBMIT = QueueTrigger("SubmitFunction", "http://queue", 10, True)


def run_side_by_side(*drivers: ScriptedDriver, seconds: float = 1.5, deliver_to: ScriptedDriver | None = None) -> None:
    for driver in drivers:
        driver.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if deliver_to is not None:
            deliver_to.deliver(SUBMIT, [])  # a queue function ran
        time.sleep(0.01)
    for driver in drivers:
        driver.stop()


def test_schedule_that_finds_nothing_runs_less_often_than_one_that_finds_work(monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    idle, busy = ScriptedDriver({}), ScriptedDriver({"checked": 1})
    run_side_by_side(idle, busy)
    assert 2 * idle.runs < busy.runs


def test_schedule_runs_at_its_interval_while_queue_functions_run(monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    idle, delivered = ScriptedDriver({}), ScriptedDriver({})
    run_side_by_side(idle, delivered, deliver_to=delivered)
    assert 2 * idle.runs < delivered.runs
