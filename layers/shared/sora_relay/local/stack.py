"""A local stack: moto's server on loopback, the template deployed in it, the functions driven."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from sora_relay import wiring
from sora_relay.local.deploy import DeployedStack, deploy
from sora_relay.local.driver import LambdaDriver

STACK_NAME = "sora-relay"
SECRET_NAME = "sora-relay/geminigen-api-key"  # noqa: S105 - the name, not the secret
REGION = "us-east-1"
# moto accepts any credentials; these only keep the SDK from looking for real ones.
_LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass(frozen=True)
class Provider:
    base_url: str
    api_key: str


class LocalStack:
    """Use as a context manager; the process environment is restored on exit."""

    def __init__(
        self,
        template: Path,
        provider: Provider,
        *,
        port: int = 0,
        schedule_interval: float | None = 1.0,
        parameters: dict[str, str] | None = None,
    ) -> None:
        self._template = template
        self._provider = provider
        self._port = port
        self._schedule_interval = schedule_interval
        self._parameters = parameters or {}
        self._saved_environment: dict[str, str] | None = None
        self._server: Any = None
        self.driver: LambdaDriver | None = None
        self.deployed: DeployedStack | None = None
        self.endpoint_url = ""
        self._events_queue_url = ""

    def __enter__(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        self._saved_environment = dict(os.environ)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        for name in [name for name in os.environ if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))]:
            del os.environ[name]
        os.environ.update(_LOCAL_AWS, AWS_ENDPOINT_URL=self.endpoint_url)
        try:
            self.deployed = deploy(
                self._template,
                stack_name=STACK_NAME,
                parameters={"GeminiGenBaseUrl": self._provider.base_url, **self._parameters},
                secret_name=SECRET_NAME,
                api_key=self._provider.api_key,
            )
            self._events_queue_url = self._subscribe_events_queue()
            wiring.reset()
            self.driver = LambdaDriver(
                self.deployed,
                base_environment={**_LOCAL_AWS, "AWS_ENDPOINT_URL": self.endpoint_url},
                schedule_interval=self._schedule_interval,
                on_environment_change=wiring.reset,
            ).start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.driver is not None:
            self.driver.stop()
        if self._server is not None:
            self._server.stop()
        wiring.reset()
        if self._saved_environment is not None:
            os.environ.clear()
            os.environ.update(self._saved_environment)

    @property
    def outputs(self) -> dict[str, str]:
        assert self.deployed is not None
        return self.deployed.outputs

    def send(self, body: dict[str, Any] | str) -> str:
        """Put a request on the queue; returns its SQS message id."""
        text = body if isinstance(body, str) else json.dumps(body)
        sent = boto3.client("sqs").send_message(QueueUrl=self.outputs["RequestQueueUrl"], MessageBody=text)
        return sent["MessageId"]

    def drain_events(self) -> list[dict[str, Any]]:
        """The completion topic's events that arrived since the last call."""
        sqs = boto3.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self._events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._events_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def job(self, request_id: str) -> dict[str, Any] | None:
        """The job's record, as plain values."""
        from boto3.dynamodb.types import TypeDeserializer

        item = boto3.client("dynamodb").get_item(
            TableName=self.outputs["JobsTableName"], Key={"request_id": {"S": request_id}}
        )
        if "Item" not in item:
            return None
        return {name: TypeDeserializer().deserialize(value) for name, value in item["Item"].items()}

    def _subscribe_events_queue(self) -> str:
        """A queue on the completion topic, as a subscriber would have."""
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="local-completion-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(
            TopicArn=self.outputs["CompletionTopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return url
