"""The stack's resources created in moto (as the template declares them), and the functions
loaded from their CodeUri and called as Lambda would."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import xform_name
from botocore.awsrequest import AWSResponse

from sora_relay.domain.events import FINAL_EVENTS_FILTER_POLICY
from sora_relay_tools.local.driver import sqs_record
from sora_relay_tools.local.functions import Handler, LocalContext, load_handler

from .paths import ROOT
from .template import load_template

REGION = "us-east-1"
API_KEY = "sk-test-do-not-log-7f3a9c"
SECRET_NAME = "sora-relay/geminigen-api-key"


def lambda_context() -> LocalContext:
    return LocalContext(function_name="sora-relay-test", timeout_seconds=300)


def scheduled_event() -> dict[str, Any]:
    """The poller's trigger, as events/schedule.json holds it."""
    return json.loads((ROOT / "events" / "schedule.json").read_text())


def load_function(logical_id: str) -> Handler:
    """The handler a template function names, loaded from its CodeUri as Lambda would."""
    properties = load_template()["Resources"][logical_id]["Properties"]
    return load_handler((ROOT / str(properties["CodeUri"])).resolve(), str(properties["Handler"]))


@dataclass
class Stack:
    """The stack's resources in moto, with helpers to move messages as Lambda would."""

    table_name: str
    topic_arn: str
    bucket: str
    request_queue_url: str
    archive_queue_url: str
    events_queue_url: str  # subscribed to the final events only
    every_event_queue_url: str  # subscribed to every event
    sweep_queue_url: str

    def __post_init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)

    def send_request(self, body: dict[str, Any] | str) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.request_queue_url, MessageBody=text)["MessageId"]

    def receive(self, queue_url: str, visibility_timeout: int = 0) -> dict[str, Any]:
        """An SQS event as Lambda's event source mapping delivers it."""
        answer = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=visibility_timeout,
        )
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Records": [sqs_record(message, arn) for message in answer.get("Messages", [])]}

    def deliver(self, handler: Handler) -> list[str]:
        """One delivery of what is on the request queue to `handler`; returns the failed message ids."""
        event = self.receive(self.request_queue_url)
        answer = handler(event, lambda_context())
        failures = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
        self.delete(self.request_queue_url, event, failures)
        return failures

    def delete(self, queue_url: str, event: dict[str, Any], failures: list[str]) -> None:
        """Delete what the handler did not report as failed, as the event source mapping does."""
        for record in event["Records"]:
            if record["messageId"] not in failures:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])

    def events(self, *, every: bool = False) -> list[dict[str, Any]]:
        """The final events published since the last call (with `every`, every event, in the
        order published): body and message attributes."""
        queue_url = self.every_event_queue_url if every else self.events_queue_url
        found = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                found.append({"body": json.loads(message["Body"]), "attributes": attributes})
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def job(self, request_id: str) -> dict[str, Any]:
        return self.item(request_id)

    def item(self, key: str) -> dict[str, Any]:
        """An item of the jobs table (a job, or the stack's own, such as `line#places`)."""
        return self.dynamodb.get_item(TableName=self.table_name, Key={"request_id": {"S": key}})["Item"]


def create_stack() -> Stack:
    suffix = uuid.uuid4().hex[:8]
    table = load_template()["Resources"]["JobsTable"]["Properties"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table_name = f"jobs-{suffix}"
    dynamodb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )
    sqs = boto3.client("sqs", region_name=REGION)
    queues = {
        name: sqs.create_queue(QueueName=f"{name}-{suffix}")["QueueUrl"]
        for name in ("requests", "archive", "events", "every-event", "sweeps")
    }
    sns = boto3.client("sns", region_name=REGION)
    topic_arn = sns.create_topic(Name=f"completions-{suffix}")["TopicArn"]
    for name, filter_policy in (("events", FINAL_EVENTS_FILTER_POLICY), ("every-event", None)):
        arn = sqs.get_queue_attributes(QueueUrl=queues[name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"}
        if filter_policy is not None:
            attributes["FilterPolicy"] = json.dumps(filter_policy)
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    bucket = f"archive-{suffix}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=SECRET_NAME, SecretString=API_KEY)
    return Stack(
        table_name=table_name,
        topic_arn=topic_arn,
        bucket=bucket,
        request_queue_url=queues["requests"],
        archive_queue_url=queues["archive"],
        events_queue_url=queues["events"],
        every_event_queue_url=queues["every-event"],
        sweep_queue_url=queues["sweeps"],
    )


class _Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._content


_LOST = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the answer was lost"}'


def answers_lost(client: Any, operation: str, times: int = 1) -> list[dict[str, Any]]:
    """The next `times` calls of a DynamoDB `operation` through `client` are carried out (by the
    table, through a client of their own) and their answers lost on the way back: the SDK sees
    a 500 and retries the same call, as it does on AWS. The calls carried out, returned."""
    twin = boto3.client("dynamodb", region_name=client.meta.region_name)
    params: dict[str, Any] = {}
    carried_out: list[dict[str, Any]] = []

    def keep(**kwargs: Any) -> None:
        params.clear()
        params.update(kwargs["params"])

    def lose(request: Any, **_: Any) -> AWSResponse | None:
        if len(carried_out) >= times:
            return None
        carried_out.append(dict(params))
        getattr(twin, xform_name(operation))(**params)
        return AWSResponse(request.url, 500, {"x-amzn-requestid": "lost"}, _Body(_LOST))

    client.meta.events.register(f"provide-client-params.dynamodb.{operation}", keep)
    client.meta.events.register_first(f"before-send.dynamodb.{operation}", lose)
    return carried_out
