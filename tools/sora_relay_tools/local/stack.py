"""A local stack: moto's server on loopback, the template deployed in it, the functions driven."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess  # nosec B404  # starts moto's server
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx

from sora_relay import wiring
from sora_relay.adapters.keys import DynamoKeys
from sora_relay_tools.local.deploy import DeployedStack, deploy, role_statements
from sora_relay_tools.local.driver import LambdaDriver
from sora_relay_tools.local.http_api import LocalHttpApi
from sora_relay_tools.local.permissions import Identity, Permissions

STACK_NAME = "sora-relay"
SECRET_NAME = "sora-relay/geminigen-api-key"  # noqa: S105  # nosec B105  # the name, not the secret
REGION = "us-east-1"
API_FUNCTION = "ApiFunction"
# moto accepts any credentials; these only keep the SDK from looking for real ones.
# The local driver runs the poller every second or so: an invocation need not wait for due jobs.
_LOCAL_FUNCTIONS = {"POLL_SWEEP_WINDOW_SECONDS": "0"}
_LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105  # moto's placeholder, not a secret
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class MotoServerProcess:
    """moto in a process of its own, on loopback, with keep-alive connections."""

    def __init__(self, port: int = 0) -> None:
        self._port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self._port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServerProcess:
        self._process = subprocess.Popen(  # noqa: S603  # nosec B603  # our own interpreter, fixed arguments
            [sys.executable, "-m", "sora_relay_tools.local.moto_server", "--port", str(self._port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self._port), timeout=0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto's server did not start")

    def cpu_seconds(self) -> float:
        """The processor time moto's process has used so far (Linux), for benchmarks."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> MotoServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        in_process: bool = False,
        server_process: bool = False,
        drive: bool = True,
        environment: dict[str, str] | None = None,
        api_port: int = 0,
    ) -> None:
        """`in_process` serves AWS from moto inside this process (no HTTP server): faster, for
        drills that step the functions themselves (`drive=False`, then `driver.deliver`...).
        `server_process` runs moto's server as a process of its own, so that its work does not
        share this interpreter's lock with the functions' (for benchmarks).
        `environment` adds variables to every function's own; the HTTP API is served on `api_port`
        (0: any free port), its base in the `ApiUrl` output.
        Each function calls AWS as its own role, and a call its role does not allow is refused
        as AWS refuses it (`permissions` records what each used)."""
        self._template = template
        self._provider = provider
        self._port = port
        self._schedule_interval = schedule_interval
        self._parameters = parameters or {}
        self._in_process = in_process
        self._server_process = server_process
        self._drive = drive
        self._extra_environment = environment or {}
        self._api_port = api_port
        self.permissions: Permissions | None = None
        self._judging: contextlib.ExitStack | None = None
        self._saved_environment: dict[str, str] | None = None
        self._server: Any = None
        self.driver: LambdaDriver | None = None
        self.http_api: LocalHttpApi | None = None
        self.deployed: DeployedStack | None = None
        self.endpoint_url = ""
        self._events_queue_url = ""
        self._clients: dict[str, Any] = {}

    def __enter__(self) -> LocalStack:
        self._saved_environment = dict(os.environ)
        for name in [name for name in os.environ if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))]:
            del os.environ[name]
        aws = dict(_LOCAL_AWS)
        if self._in_process:
            from moto import mock_aws

            self._server = mock_aws()
            self._server.start()
        elif self._server_process:
            self._server = MotoServerProcess(self._port).start()
            self.endpoint_url = self._server.endpoint_url
            aws["AWS_ENDPOINT_URL"] = self.endpoint_url
        else:
            from sora_relay_tools.local.moto_server import MotoServerThread

            self._server = MotoServerThread(self._port).start()
            self.endpoint_url = self._server.endpoint_url
            aws["AWS_ENDPOINT_URL"] = self.endpoint_url
        os.environ.update(aws)
        try:
            self.deployed = deploy(
                self._template,
                stack_name=STACK_NAME,
                parameters={"GeminiGenBaseUrl": self._provider.base_url, **self._parameters},
                secret_name=SECRET_NAME,
                api_key=self._provider.api_key,
            )
            self._events_queue_url = self._subscribe_events_queue()
            self.permissions = self._roles(self.deployed)
            self._judging = contextlib.ExitStack()
            self._judging.enter_context(self.permissions.judging())
            wiring.reset()
            permissions = self.permissions
            self.driver = LambdaDriver(
                self.deployed,
                base_environment={**aws, **_LOCAL_FUNCTIONS, **self._extra_environment},
                schedule_interval=self._schedule_interval,
                on_environment_change=wiring.rebuild,
                run_as=lambda function: wiring.run_as(**permissions.credentials(function)),
            )
            if self._drive:
                self.driver.start()
            if API_FUNCTION in self.deployed.functions:
                driver = self.driver
                self.http_api = LocalHttpApi(lambda event: driver.invoke(API_FUNCTION, event), self._api_port).start()
                # What API Gateway's address would be on AWS: the template's own cannot be resolved here.
                self.deployed.outputs["ApiUrl"] = self.http_api.base_url
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.http_api is not None:
            self.http_api.stop()
            self.http_api = None
        if self.driver is not None:
            self.driver.stop()
        if self._server is not None:
            if self.endpoint_url and self.moto_process is None:
                # A server in this process shares moto's state with every later one here.
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
            self._server.stop()
        self._clients.clear()
        if self._judging is not None:
            self._judging.close()
            self._judging = None
        wiring.reset()
        if self._saved_environment is not None:
            os.environ.clear()
            os.environ.update(self._saved_environment)

    @property
    def moto_process(self) -> MotoServerProcess | None:
        return self._server if isinstance(self._server, MotoServerProcess) else None

    def create_key(self, name: str, daily_credits: float | None = None) -> str:
        """A new key of the HTTP API, named `name` (as `sora-relay keys create` makes one)."""
        from sora_relay_tools.client.keys import create_key

        return create_key(self._keys(), name, daily_credits)

    def revoke_key(self, name: str) -> None:
        self._keys().revoke(name, datetime.now(UTC))

    def _keys(self) -> DynamoKeys:
        return DynamoKeys(self.client("dynamodb"), self.outputs["ApiKeysTableName"])

    def client(self, service: str) -> Any:
        """A client of the emulated AWS, made once (making one costs tens of milliseconds)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def outputs(self) -> dict[str, str]:
        assert self.deployed is not None
        return self.deployed.outputs

    def send(self, body: dict[str, Any] | str) -> str:
        """Put a request on the queue; returns its SQS message id."""
        text = body if isinstance(body, str) else json.dumps(body)
        sent = self.client("sqs").send_message(QueueUrl=self.outputs["RequestQueueUrl"], MessageBody=text)
        return str(sent["MessageId"])

    def drain_events(self) -> list[dict[str, Any]]:
        """The completion topic's events that arrived since the last call."""
        sqs = self.client("sqs")
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

        item = self.client("dynamodb").get_item(
            TableName=self.outputs["JobsTableName"], Key={"request_id": {"S": request_id}}
        )
        if "Item" not in item:
            return None
        return {name: TypeDeserializer().deserialize(value) for name, value in item["Item"].items()}

    def _roles(self, deployed: DeployedStack) -> Permissions:
        """Each function's role as deployed, assumed through STS as Lambda assumes it."""
        sts = self.client("sts")
        identities = []
        for function in deployed.functions.values():
            assumed = sts.assume_role(RoleArn=function.role_arn, RoleSessionName=function.name)["Credentials"]
            identities.append(
                Identity(
                    function=function.logical_id,
                    role_arn=function.role_arn,
                    statements=role_statements(function.role_arn),
                    credentials={
                        "aws_access_key_id": assumed["AccessKeyId"],
                        "aws_secret_access_key": assumed["SecretAccessKey"],
                        "aws_session_token": assumed["SessionToken"],
                    },
                )
            )
        secret_arn = self.client("secretsmanager").describe_secret(SecretId=SECRET_NAME)["ARN"]
        return Permissions(identities, {SECRET_NAME: secret_arn})

    def _subscribe_events_queue(self) -> str:
        """A queue on the completion topic, as a subscriber would have."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName="local-completion-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(
            TopicArn=self.outputs["CompletionTopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return str(url)
