"""A shard handed out by a poll that ran out of time is swept by an invocation of its own."""

import json

from sora_relay.adapters.dynamodb import shard_of

from ..support.aws import lambda_context, load_function
from ..support.paths import ROOT


def test_handed_out_shard_is_swept(stack, simulator) -> None:
    submit, sweep = load_function("SubmitFunction"), load_function("SweepFunction")
    stack.send_request({"request_id": "s-1", "prompt": "a heron"})
    event = stack.receive(stack.request_queue_url)
    submit(event, lambda_context())
    # Due now: the job's first status call.
    item = stack.job("s-1")
    stack.dynamodb.update_item(
        TableName=stack.table_name,
        Key={"request_id": {"S": "s-1"}},
        UpdateExpression="SET next_check_at = :now",
        ExpressionAttributeValues={":now": {"N": "0"}},
    )
    shard = int(item["poll_shard"]["S"])
    assert shard == shard_of("s-1", 4)
    stack.sqs.send_message(QueueUrl=stack.sweep_queue_url, MessageBody=json.dumps({"shard": shard}))
    answer = sweep(stack.receive(stack.sweep_queue_url), lambda_context())
    assert answer == {"batchItemFailures": []}
    assert stack.job("s-1")["state"]["S"] == "completed"
    assert stack.receive(stack.archive_queue_url)["Records"]


def test_completed_poll_publishes_the_metric_the_poller_silent_alarm_watches(stack, capsys) -> None:
    poll = load_function("PollFunction")
    schedule = json.loads((ROOT / "events" / "schedule.json").read_text())
    poll(schedule, lambda_context())
    published = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {metric["Name"] for record in published for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert "PollsCompleted" in names
