import io
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from pydantic import ValidationError

from sora_relay import wiring
from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.request import VideoRequest
from sora_relay.observability import logger
from sora_relay_tools.simulator import Fault

from ..support.aws import API_KEY, lambda_context, load_function, scheduled_event

REQUEST = {"request_id": "ad-1", "prompt": "a fox in the snow", "metadata": {"campaign": "spring"}}


@pytest.fixture(scope="module")
def submit():
    return load_function("SubmitFunction")


@pytest.fixture(scope="module")
def poll():
    return load_function("PollFunction")


def test_request_is_submitted_and_recorded(stack, simulator, submit) -> None:
    stack.send_request(REQUEST)
    assert stack.deliver(submit) == []
    [generation] = simulator.submissions()
    assert generation.fields["prompt"] == "a fox in the snow"
    job = stack.job("ad-1")
    assert job["state"]["S"] == "submitted"
    assert generation.uuid in job["provider"]["S"]


def test_message_delivered_three_times_submits_once(stack, simulator, submit) -> None:
    stack.send_request(REQUEST)
    for _ in range(3):
        event = stack.receive(stack.request_queue_url)
        assert submit(event, lambda_context()) == {"batchItemFailures": []}
        # SQS delivers it again (at least once), whatever the handler set its visibility to.
        [record] = event["Records"]
        stack.sqs.change_message_visibility(
            QueueUrl=stack.request_queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )
    assert len(simulator.submissions()) == 1


def test_a_batchs_messages_are_hidden_a_short_lease_not_the_queues_whole_timeout(stack, simulator, submit) -> None:
    stack.send_request(REQUEST)
    event = stack.receive(stack.request_queue_url, visibility_timeout=720)  # the queue's, as Lambda takes it
    hidden: list[dict[str, object]] = []
    wiring.reset(on_aws_request=lambda name, params: hidden.append(params) if "Visibility" in name else None)
    try:
        submit(event, lambda_context())
    finally:
        wiring.reset()
    visibility = [entry["VisibilityTimeout"] for params in hidden for entry in params["Entries"]]  # type: ignore[attr-defined]
    assert visibility == [60]  # should the invocation die, back in a minute, not in twelve


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"request_id": "bad-1", "prompt": "a fox", "reslution": "large"}', "reslution"),
        ('{"request_id": "bad-1", "prompt": ""}', "prompt"),
        ('{"request_id": "bad-1", "prompt": "a fox", "duration": 12}', "duration"),
        ('{"request_id": "bad-1", "prompt": "a fox", "model": "sora-9"}', "model"),
        ('{"request_id": "bad-1", "prompt": "a fox", "files": ["ftp://x/y.png"]}', "files[0]"),
    ],
)
def test_invalid_message_gets_its_invalid_request_event_and_is_consumed(stack, simulator, submit, body, field) -> None:
    stack.send_request(body)
    assert stack.deliver(submit) == []
    [event] = stack.events()
    assert event["body"]["event"] == "video.failed"
    assert event["body"]["error"]["code"] == "invalid_request"
    assert event["body"]["error"]["message"].startswith(f"{field}: ")
    assert event["attributes"] == {"event": "video.failed", "request_id": "bad-1"}
    assert simulator.submissions() == []
    assert stack.receive(stack.request_queue_url)["Records"] == []


def test_message_that_is_not_json_fails_under_its_message_id(stack, simulator, submit) -> None:
    message_id = stack.send_request("this is not json")
    stack.deliver(submit)
    [event] = stack.events()
    assert event["body"]["request_id"] == message_id
    assert event["body"]["event_id"] == f"{message_id}:video.failed"


def test_rate_limited_request_goes_back_in_line_and_its_message_is_consumed(stack, simulator, submit) -> None:
    simulator.inject("submit", Fault(status=429, retry_after="7"))
    stack.send_request(REQUEST)
    assert stack.deliver(submit) == []  # no batch-item failure: no receive counted
    assert stack.receive(stack.request_queue_url)["Records"] == []
    job = stack.job("ad-1")
    assert (job["state"]["S"], job["line"]["S"]) == ("received", "normal")
    places = stack.item("line#places")
    assert int(places["resume_at"]["N"]) / 1000 - time.time() == pytest.approx(7, abs=2)
    assert "holders" not in places


def test_rate_limited_request_starts_from_the_line_once_the_pause_ends(stack, simulator, submit, poll) -> None:
    simulator.inject("submit", Fault(status=429))
    stack.send_request(REQUEST)
    stack.deliver(submit)
    stack.dynamodb.update_item(  # the pause runs out
        TableName=stack.table_name, Key={"request_id": {"S": "line#places"}}, UpdateExpression="REMOVE resume_at"
    )
    poll(scheduled_event(), lambda_context())
    assert stack.deliver(submit) == []
    assert len(simulator.submissions()) == 1
    assert stack.job("ad-1")["state"]["S"] == "submitted"


def test_capacity_refusal_never_ends_a_request_and_holds_the_line_to_the_places_held(stack, simulator, submit) -> None:
    simulator.max_running = 1
    simulator.generation_seconds = 600
    stack.send_request({**REQUEST, "request_id": "first"})
    stack.deliver(submit)
    stack.send_request({**REQUEST, "request_id": "second", "prompt": "a wolf in the snow"})
    assert stack.deliver(submit) == []
    assert stack.events() == []
    assert stack.job("second")["line"]["S"] == "normal"
    places = stack.item("line#places")
    holders = [place.split("@")[0] for place in places["holders"]["SS"]]
    assert (holders, places["learned_limit"]["N"]) == (["first"], "1")
    assert "MAX_PROCESSING_VIDEO_EXCEEDED" in places["reason"]["S"]


def test_refusal_ends_as_provider_rejected_with_request_and_metadata(stack, simulator, submit) -> None:
    simulator.inject("submit", Fault(status=400))
    stack.send_request(REQUEST)
    assert stack.deliver(submit) == []
    [event] = stack.events()
    body = event["body"]
    assert body["error"]["code"] == "provider_rejected"
    assert body["request"] == {
        "prompt": "a fox in the snow",
        "model": "sora-2",
        "family": "sora",
        "duration": 10,
        "resolution": "small",
        "aspect_ratio": "landscape",
    }
    assert body["metadata"] == {"campaign": "spring"}
    assert "provider" not in body
    assert event["attributes"] == {"event": "video.failed", "request_id": "ad-1", "model": "sora-2", "family": "sora"}


def test_one_record_that_must_come_again_does_not_fail_the_batch(stack, simulator, submit) -> None:
    now = datetime.now(UTC)
    request = VideoRequest.model_validate(
        {"prompt": "a fox", "duration": 10, "resolution": "small", "aspect_ratio": "landscape"}
    )
    claimed = Job(
        "first",
        JobState.RECEIVED,
        request.fingerprint(),
        now,
        now,
        request=request,
        lease_until=now + timedelta(minutes=5),
    )
    DynamoJobStore(boto3.client("dynamodb"), stack.table_name, shards=1, finished_ttl=timedelta(days=1)).create(claimed)
    stack.send_request({"request_id": "first", "prompt": "a fox"})  # another invocation holds its claim
    stack.send_request({**REQUEST, "request_id": "second", "prompt": "a wolf"})
    failures = stack.deliver(submit)
    assert len(failures) == 1
    assert [generation.fields["prompt"] for generation in simulator.submissions()] == ["a wolf"]


def test_api_key_never_reaches_logs_or_events(stack, simulator, submit, captured_logs) -> None:
    simulator.inject("submit", Fault(status=401))
    stack.send_request(REQUEST)
    stack.deliver(submit)
    stack.send_request({**REQUEST, "request_id": "bad", "duration": 3})
    stack.deliver(submit)
    logs = captured_logs.getvalue()
    assert "the provider refused the account (HTTP 401): API_KEY_NOT_FOUND" in logs
    assert API_KEY not in logs
    assert all(API_KEY not in str(event) for event in stack.events())


def test_reference_file_from_an_allowed_bucket_is_uploaded_with_the_submission(stack, simulator, submit) -> None:
    stack.s3.put_object(Bucket=stack.bucket, Key="refs/style.png", Body=b"\x89PNG", ContentType="image/png")
    stack.send_request({**REQUEST, "files": [f"s3://{stack.bucket}/refs/style.png"]})
    assert stack.deliver(submit) == []
    [generation] = simulator.submissions()
    assert generation.file_names == ["style.png"]


def test_reference_file_from_another_bucket_is_an_invalid_request(stack, simulator, submit) -> None:
    stack.send_request({**REQUEST, "files": ["s3://someone-elses-bucket/style.png"]})
    stack.deliver(submit)
    [event] = stack.events()
    assert event["body"]["error"]["code"] == "invalid_request"
    assert event["body"]["error"]["message"].startswith("files[0]: bucket someone-elses-bucket")
    assert simulator.submissions() == []


def test_records_of_a_batch_are_submitted_concurrently(stack, simulator, submit) -> None:
    simulator.latency = 0.2
    for number in range(5):
        stack.send_request({**REQUEST, "request_id": f"c-{number}", "prompt": f"scene {number}"})
    assert stack.deliver(submit) == []
    assert len(simulator.submissions()) == 5
    assert simulator.most_submissions_at_once >= 2


def test_unexpected_failure_of_a_record_is_logged_at_error_with_its_request_id_and_counted(
    stack, simulator, submit, monkeypatch, capsys
) -> None:
    from sora_relay.services.submit.service import SubmitService

    def broken(self, job, message):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(SubmitService, "_submit", broken)
    message_id = stack.send_request(REQUEST)
    event = stack.receive(stack.request_queue_url)
    logged = io.StringIO()
    stream = logger.registered_handler.setStream(logged)  # the logger kept the stdout it found
    try:
        assert submit(event, lambda_context()) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    finally:
        logger.registered_handler.setStream(stream)
    [error] = [json.loads(line) for line in logged.getvalue().splitlines() if '"level":"ERROR"' in line]
    assert error["request_id"] == "ad-1"
    assert "a bug nobody foresaw" in error["exception"]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [record["RecordsFailed"] for record in metrics if "RecordsFailed" in record] == [[1.0]]


def test_container_with_a_broken_environment_fails_its_invocation(stack, submit, monkeypatch) -> None:
    monkeypatch.delenv("JOBS_TABLE_NAME")
    wiring.rebuild()
    stack.send_request(REQUEST)
    with pytest.raises(ValidationError, match="JOBS_TABLE_NAME"):
        submit(stack.receive(stack.request_queue_url), lambda_context())
