"""The command's argument parsing: filters and times, as people type them."""

from datetime import UTC, datetime, timedelta

import click
import pytest

from sora_relay.domain.jobs import Job, JobState
from sora_relay_tools.cli.jobs import _since, describe
from sora_relay_tools.cli.watching import filter_policy


def test_filters_become_an_sns_filter_policy() -> None:
    policy = filter_policy(("event=video.failed", "model=sora-2", "model=sora-2-pro", "request_id=ads-*"))
    assert policy == {
        "event": ["video.failed"],
        "model": ["sora-2", "sora-2-pro"],
        "request_id": [{"prefix": "ads-"}],
    }


@pytest.mark.parametrize("text", ["metadata=x", "event", "=video.failed"])
def test_filter_on_anything_but_a_message_attribute_is_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter):
        filter_policy((text,))


def test_since_takes_an_age() -> None:
    moment = _since(None, None, "6h")  # type: ignore[arg-type]
    assert moment is not None
    assert abs(datetime.now(UTC) - timedelta(hours=6) - moment) < timedelta(seconds=5)


def test_since_takes_an_iso_time_as_utc() -> None:
    assert _since(None, None, "2026-11-23T10:00") == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # type: ignore[arg-type]


def test_since_refuses_other_text() -> None:
    with pytest.raises(click.BadParameter):
        _since(None, None, "yesterday")  # type: ignore[arg-type]


def test_status_of_a_held_request_says_why_it_waits() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    job = Job("h-1", JobState.RECEIVED, "f", now, now, held="the daily credit budget (10) has 0 credits left")
    assert describe(job)["held"] == "the daily credit budget (10) has 0 credits left"


def test_filter_on_a_family_becomes_its_attribute() -> None:
    assert filter_policy(("family=veo", "family=kling")) == {"family": ["veo", "kling"]}


def test_local_stack_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from click.testing import CliRunner

    local_module = importlib.import_module("sora_relay_tools.cli.local")

    real_find_spec = local_module.importlib.util.find_spec
    monkeypatch.setattr(
        local_module.importlib.util, "find_spec", lambda name: None if name == "moto" else real_find_spec(name)
    )
    result = CliRunner().invoke(local_module.local, ["run"])
    assert result.exit_code == 1
    assert "needs moto" in result.output
    assert "pip install '.[local]'" in result.output
    assert "Traceback" not in result.output
