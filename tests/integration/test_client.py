"""The Python client against moto: what it sends, refuses and moves."""

import json
import time

import boto3
import pytest

from sora_relay import wiring
from sora_relay_tools.client import CannotCancel, Relay, RelayError, StackNotFound, StackResources

from ..support.aws import load_function


def outputs(stack, **more: str) -> StackResources:
    """The stack's outputs as the template declares them."""
    return StackResources.of(
        {
            "RequestQueueUrl": stack.request_queue_url,
            "CompletionTopicArn": stack.topic_arn,
            "ArchiveBucketName": stack.bucket,
            "JobsTableName": stack.table_name,
            "InputLocation": f"s3://{stack.bucket}/inputs/",
            **more,
        }
    )


@pytest.fixture
def relay(stack) -> Relay:
    dead_letters = stack.sqs.create_queue(QueueName="requests-dead-letters")["QueueUrl"]
    return Relay(outputs(stack, RequestDeadLetterQueueUrl=dead_letters))


def queued_bodies(stack) -> list[str]:
    """Everything on the request queue, taken off it."""
    bodies = []
    while messages := stack.sqs.receive_message(QueueUrl=stack.request_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            bodies.append(message["Body"])
            stack.sqs.delete_message(QueueUrl=stack.request_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def queued(stack) -> list[dict]:
    return [json.loads(body) for body in queued_bodies(stack)]


def test_send_many_sends_the_valid_bodies_and_returns_the_others(relay, stack) -> None:
    bodies = [{"request_id": f"r-{n}", "prompt": f"scene {n}"} for n in range(25)]
    bodies[3]["duration"] = 12
    bodies[17]["reslution"] = "large"
    batches: list[int] = []
    handles, rejected = relay.send_many(bodies, on_sent=batches.append)
    assert [r.index for r in rejected] == [3, 17]
    assert "duration" in rejected[0].reason
    assert len(handles) == 23
    assert batches == [10, 10, 3]
    assert sorted(body["request_id"] for body in queued(stack)) == sorted(h.request_id for h in handles)


def test_request_without_an_id_is_known_by_its_message_id(relay, stack) -> None:
    handle = relay.submit("a fox")
    sent = stack.sqs.receive_message(QueueUrl=stack.request_queue_url)["Messages"][0]
    assert handle.request_id == sent["MessageId"]
    assert json.loads(sent["Body"]) == {"prompt": "a fox"}


def test_a_fallback_is_sent_as_the_request_names_it_and_a_wrong_one_is_refused_before_sending(relay, stack) -> None:
    fallback = ["kling-video-2-6", {"model": "grok-3", "duration": 10, "skip_audio": True}]
    relay.submit("a red fox runs through the snow", model="veo-3.1", fallback=fallback)
    assert queued(stack)[0]["fallback"] == fallback
    with pytest.raises(RelayError, match=r"fallback\[0\]\.duration"):
        relay.submit("a red fox runs through the snow", model="veo-3.1", fallback=[{"model": "grok-3", "duration": 7}])


def test_local_file_is_uploaded_to_the_input_location(relay, stack, tmp_path) -> None:
    reference = tmp_path / "style.png"
    reference.write_bytes(b"png")
    relay.submit("in this style", model="veo-3.1", files=[str(reference), "https://example.com/a.png"])
    [body] = queued(stack)
    uploaded, linked = body["ref_images"]  # the field Veo takes its references in
    assert linked == "https://example.com/a.png"
    bucket, _, key = uploaded.removeprefix("s3://").partition("/")
    assert (bucket, key.startswith("inputs/"), key.endswith("/style.png")) == (stack.bucket, True, True)
    assert boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == b"png"


def test_missing_local_file_is_refused_before_sending(relay, stack) -> None:
    with pytest.raises(RelayError, match="neither a local file"):
        relay.submit("x", files=["no/such/file.png"])
    assert queued(stack) == []


def test_redrive_keeps_each_request_its_first_id_and_leaves_other_bodies_alone(relay, stack) -> None:
    [queue] = relay.dead_letter_queues()
    first = stack.sqs.send_message(QueueUrl=queue.url, MessageBody='{"prompt": "again"}')["MessageId"]
    stack.sqs.send_message(QueueUrl=queue.url, MessageBody='{"request_id": "own", "prompt": "again"}')
    stack.sqs.send_message(QueueUrl=queue.url, MessageBody="not json")
    assert relay.redrive(queue) == 3
    assert sorted(queued_bodies(stack)) == sorted(
        [json.dumps({"prompt": "again", "request_id": first}), '{"request_id": "own", "prompt": "again"}', "not json"]
    )
    assert relay.dead_letter_queues()[0].depth == 0


def test_stack_without_the_outputs_is_not_taken_for_one() -> None:
    with pytest.raises(StackNotFound, match="InputLocation"):
        StackResources.of({"RequestQueueUrl": "q"})


def test_cancel_of_a_queued_request_publishes_canceled_and_its_delivery_submits_nothing(
    relay, stack, simulator
) -> None:
    handle = relay.submit("a fox", request_id="to-cancel")
    canceled = relay.cancel(handle.request_id)
    assert canceled.before_read
    assert stack.deliver(load_function("SubmitFunction")) == []
    assert simulator.submissions() == []
    [event] = stack.events()
    assert (event["body"]["event"], event["body"]["error"]["code"]) == ("video.failed", "canceled")
    assert event["attributes"]["event"] == "video.failed"
    assert handle.wait(timeout=1).error.code == "canceled"


def test_canceled_record_is_kept_as_long_as_the_stack_keeps_finished_jobs(stack) -> None:
    Relay(outputs(stack, FinishedJobTtlDays="60")).cancel("kept")
    item = stack.dynamodb.get_item(TableName=stack.table_name, Key={"request_id": {"S": "kept"}})["Item"]
    days = (int(item["expires_at"]["N"]) - time.time()) / 86400
    assert 59.9 < days <= 60


def test_cancel_of_a_submitted_request_raises_saying_what_was_spent(relay, stack) -> None:
    relay.submit("a fox", request_id="too-late")
    stack.deliver(load_function("SubmitFunction"))
    with pytest.raises(CannotCancel, match=r"was submitted to the provider .*30 credits estimated"):
        relay.cancel("too-late")
    assert [event["body"]["event"] for event in stack.events(every=True)] == ["video.submitted"]


def one_place(monkeypatch) -> None:
    """The stack's functions, deployed with MaxActiveGenerations=1."""
    monkeypatch.setenv("MAX_ACTIVE_GENERATIONS", "1")
    wiring.rebuild()


def test_waiting_requests_show_their_place_in_the_line_and_why(stack, simulator, monkeypatch) -> None:
    one_place(monkeypatch)
    relay = Relay(outputs(stack, MaxActiveGenerations="1"))
    simulator.generation_seconds = 600
    submit = load_function("SubmitFunction")
    for request_id, priority in (("running", "normal"), ("second", "normal"), ("first", "high")):
        stack.send_request({"request_id": request_id, "prompt": f"a fox called {request_id}", "priority": priority})
        stack.deliver(submit)
    jobs = [relay.record(request_id) for request_id in ("running", "second", "first")]
    places = relay.line_places(jobs)
    assert {request_id: place.ahead for request_id, place in places.items()} == {"first": 0, "second": 1}
    assert places["second"].why == "1 of 1 places taken by running generations"


def test_a_waiting_request_is_canceled_and_leaves_the_line(stack, simulator, monkeypatch) -> None:
    one_place(monkeypatch)
    relay = Relay(outputs(stack, MaxActiveGenerations="1"))
    simulator.generation_seconds = 600
    submit = load_function("SubmitFunction")
    for request_id in ("running", "waiting"):
        stack.send_request({"request_id": request_id, "prompt": f"a fox called {request_id}"})
        stack.deliver(submit)
    relay.cancel("waiting")
    assert relay.line_places([relay.record("waiting")]) == {}
    assert "line" not in stack.job("waiting")


def test_jobs_take_a_state_and_an_age_as_the_command_does(relay, stack, simulator) -> None:
    submit = load_function("SubmitFunction")
    stack.send_request({"request_id": "fine", "prompt": "a fox in the snow"})
    stack.send_request({"request_id": "broken", "prompt": "a fox", "duration": 12})
    stack.deliver(submit)
    assert [job.request_id for job in relay.jobs(state="failed")] == ["broken"]
    assert sorted(job.request_id for job in relay.jobs(since="30m")) == ["broken", "fine"]
    assert relay.jobs(since="2099-01-01T00:00") == []
