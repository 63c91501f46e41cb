import pytest

from sora_relay_tools.local.deploy import schedule_interval


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_schedules_become_intervals(expression: str, seconds: int) -> None:
    assert schedule_interval(expression) == seconds


def test_cron_schedules_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cron"):
        schedule_interval("cron(0 12 * * ? *)")
