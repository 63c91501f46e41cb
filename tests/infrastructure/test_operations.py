"""The template's dashboard and alarms: they show and watch what the functions really emit."""

import json
import re
from typing import Any

import pytest

from ..support.paths import ROOT
from ..support.template import load_template

SOURCE = ROOT / "layers" / "shared" / "sora_relay"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def emitted_metrics() -> set[str]:
    """Every metric name the services count, and those the handlers add themselves."""
    names: set[str] = set()
    for path in [*SOURCE.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        names |= set(re.findall(r'metrics\.count\(\s*"(\w+)"', path.read_text()))
        names |= set(re.findall(r'metrics\.add_metric\(\s*name="(\w+)"', path.read_text()))
    return names


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body as CloudFormation would substitute it."""
    body, variables = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text = body.replace("${AWS::Region}", "us-east-1").replace("${DailyCreditBudget}", "0")
    for name in variables:
        text = text.replace("${" + name + "}", f"queue-{name}")
    assert "${" not in text
    return json.loads(text)


def test_dashboard_body_is_json_once_substituted(template) -> None:
    assert dashboard(template)["widgets"]


def test_dashboard_shows_only_metrics_the_functions_emit(template) -> None:
    shown = {
        line[1]
        for widget in dashboard(template)["widgets"]
        for line in widget["properties"].get("metrics", [])
        if line[0] == "SoraRelay"
    }
    assert shown <= emitted_metrics()
    assert {"JobsSubmitted", "JobsCompleted", "JobsFailed", "CreditsEstimated", "ArchiveBytes", "PollLag"} <= shown


def test_dashboard_breaks_failures_down_by_code(template) -> None:
    expressions = [
        line[0]["expression"]
        for widget in dashboard(template)["widgets"]
        for line in widget["properties"].get("metrics", [])
        if isinstance(line[0], dict)
    ]
    assert any('{SoraRelay,code} MetricName="JobsFailed"' in expression for expression in expressions)


def test_dashboard_shows_every_dead_letter_queue(template) -> None:
    dead_letter_queues = {name for name in of_type(template, "AWS::SQS::Queue") if "DeadLetter" in name}
    shown = {
        line[3].removeprefix("queue-").removesuffix("Name")
        for widget in dashboard(template)["widgets"]
        for line in widget["properties"].get("metrics", [])
        if line[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]
    }
    assert dead_letter_queues <= shown


def test_dashboard_shows_every_alarm(template) -> None:
    [widget] = [widget for widget in dashboard(template)["widgets"] if widget["type"] == "alarm"]
    names = {
        alarm["Properties"]["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}")
        for alarm in of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    assert {arn.removeprefix("queue-AlarmArnPrefix") for arn in widget["properties"]["alarms"]} == names


def test_every_dead_letter_queue_has_an_alarm(template) -> None:
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert watched == {name for name in of_type(template, "AWS::SQS::Queue") if "DeadLetter" in name}


def test_every_alarm_notifies_the_alarm_topic(template) -> None:
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert {name: a["Properties"]["AlarmActions"] for name, a in alarms.items()} == {
        name: [{"Ref": "AlarmTopic"}] for name in alarms
    }


def test_alarms_watch_metrics_the_functions_emit(template) -> None:
    watched = set()
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == "SoraRelay":
            watched.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            watched.add(query.get("MetricStat", {}).get("Metric", {}).get("MetricName"))
    watched.discard(None)
    assert watched <= emitted_metrics()
    assert {"JobsFailed", "JobsCompleted", "RequestsHeld"} <= watched


def test_alarm_email_is_subscribed_only_when_given(template) -> None:
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


def alarm_on(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in of_type(template, "AWS::CloudWatch::Alarm").values()
        if (alarm["Properties"].get("Namespace"), alarm["Properties"].get("MetricName")) == (namespace, metric)
    ]


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_alarm_on_its_errors_and_throttles(template, metric: str) -> None:
    watched = {alarm["Dimensions"][0]["Value"]["Ref"] for alarm in alarm_on(template, "AWS/Lambda", metric)}
    assert watched == set(of_type(template, "AWS::Serverless::Function"))


def test_poller_silence_alarm_fires_when_no_poll_reports_in(template) -> None:
    [alarm] = alarm_on(template, "SoraRelay", "PollsCompleted")
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)


def test_oldest_request_alarm_watches_the_request_queue(template) -> None:
    [alarm] = alarm_on(template, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["RequestQueue", "QueueName"]}
    assert alarm["Threshold"] == {"Ref": "OldestRequestAlarmSeconds"}
