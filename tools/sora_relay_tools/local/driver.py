"""Doing Lambda's part: long-poll each trigger queue, run each schedule, invoke the handlers."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3

from sora_relay_tools.local.deploy import DeployedStack, FunctionSpec, QueueTrigger, ScheduleTrigger
from sora_relay_tools.local.functions import LocalContext, load_handler

# Invokes a function by its logical id with an event; returns its answer.
Invoke = Callable[[str, dict[str, Any]], Any]

log = logging.getLogger(__name__)
_LONG_POLL_SECONDS = 1  # short enough to stop promptly, long enough not to spin
# A schedule whose run found nothing to check waits twice as long each time, up to this many
# times its interval, until another function runs or a run finds work: an idle local stack
# polling every few tenths of a second would otherwise keep a tenth of a core busy. Work that
# arrives meanwhile (a function ran) ends the wait at the next interval, so the bound costs
# no latency to what a function started; a job merely coming due is found at the latest then.
_IDLE_BACKOFF = 16


class LambdaDriver:
    """Invokes the stack's handlers in this process, one invocation at a time.

    One at a time because the functions share this process's environment: each
    invocation runs with its own function's variables, as Lambda would give it.
    """

    def __init__(
        self,
        stack: DeployedStack,
        *,
        base_environment: dict[str, str],
        schedule_interval: float | None = None,
        on_environment_change: Callable[[], None] | None = None,
        run_as: Callable[[str], None] | None = None,
    ) -> None:
        """`run_as` is told which function (its logical id) is about to run, before each
        invocation: its services then call AWS as that function's role."""
        self._stack = stack
        self._base_environment = base_environment
        self._schedule_interval = schedule_interval
        self._on_environment_change = on_environment_change
        self._run_as = run_as
        self._sqs = boto3.client("sqs")
        self._stop = threading.Event()
        self._invoking = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._environment: dict[str, str] | None = None
        self._queue_arns: dict[str, str] = {}
        self.invocations: dict[str, int] = dict.fromkeys(stack.functions, 0)
        self._scheduled = {schedule.function for schedule in stack.schedules}
        # Runs of the functions on no schedule (a queue's, the API's): what they do may give a
        # scheduled one work.
        self._unscheduled_runs = 0
        self.errors: list[str] = []

    def start(self) -> LambdaDriver:
        for trigger in self._stack.queue_triggers:
            self._spawn(f"sqs-{trigger.function}", partial(self._poll_queue, trigger))
        for schedule in self._stack.schedules:
            self._spawn(f"schedule-{schedule.function}", partial(self._run_schedule, schedule))
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def __enter__(self) -> LambdaDriver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        function = self._stack.functions[logical_id]
        with self._invoking:
            self.enter_environment(function)
            if self._run_as is not None:
                self._run_as(logical_id)
            handler = load_handler(function.code_dir, function.handler)
            context = LocalContext(
                function_name=function.name,
                timeout_seconds=function.timeout,
                memory_limit_in_mb=function.memory,
                invoked_function_arn=function.arn,
            )
            self.invocations[logical_id] += 1
            if logical_id not in self._scheduled:
                self._unscheduled_runs += 1
            return handler(event, context)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def configure(self, variables: dict[str, str]) -> None:
        """Change every function's environment from its next invocation on, as a stack update would."""
        self._base_environment.update(variables)
        self._environment = {}  # not None: the next function entered rebuilds its services

    def enter_environment(self, function: FunctionSpec) -> None:
        """The process environment as the function sees it (its own variables, then the base)."""
        environment = {**function.environment, **self._base_environment}
        if environment != self._environment:
            os.environ.update(environment)
            # Services built for another configuration would be wrong now.
            if self._environment is not None and self._on_environment_change is not None:
                self._on_environment_change()
            self._environment = environment
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.name

    def receive(self, trigger: QueueTrigger, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """One batch from a trigger queue, as the event source mapping would take it."""
        answer = self._sqs.receive_message(
            QueueUrl=trigger.queue_url,
            MaxNumberOfMessages=min(trigger.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [dict(message) for message in answer.get("Messages", [])]

    def deliver(self, trigger: QueueTrigger, messages: list[dict[str, Any]], invoke: Invoke | None = None) -> list[str]:
        """Invoke the function with the batch, delete what succeeded; returns the failed receipt handles.
        `invoke` replaces `self.invoke` (a benchmark that calls and times handlers its own way).

        A failed record stays in the queue: it comes back when its visibility timeout (the
        queue's, or the one the handler set) runs out, and moto's SQS moves it to the
        dead-letter queue once it has come too often, as SQS does."""
        event = {"Records": [sqs_record(message, self._queue_arn(trigger.queue_url)) for message in messages]}
        self._unscheduled_runs += 1  # also when `invoke` is another's
        try:
            answer = (invoke or self.invoke)(trigger.function, event)
            failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
            if failed and not trigger.report_batch_item_failures:
                failed = {message["MessageId"] for message in messages}
        except Exception as error:
            # A failed invocation returns the whole batch to the queue, as Lambda does.
            self._note_error(f"{trigger.function} failed: {error!r}")
            failed = {message["MessageId"] for message in messages}
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=trigger.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return [message["ReceiptHandle"] for message in messages if message["MessageId"] in failed]

    def run_schedule_once(self, schedule: ScheduleTrigger, invoke: Invoke | None = None) -> Any:
        return (invoke or self.invoke)(schedule.function, _schedule_event(schedule))

    def _queue_arn(self, queue_url: str) -> str:
        if queue_url not in self._queue_arns:
            attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            self._queue_arns[queue_url] = attributes["Attributes"]["QueueArn"]
        return self._queue_arns[queue_url]

    def _poll_queue(self, trigger: QueueTrigger) -> None:
        while not self._stop.is_set():
            try:
                messages = self.receive(trigger, wait_seconds=_LONG_POLL_SECONDS)
                if messages:
                    self.deliver(trigger, messages)
            except Exception as error:
                self._note_error(f"{trigger.function}: {error!r}")

    def _run_schedule(self, schedule: ScheduleTrigger) -> None:
        interval = self._schedule_interval or schedule.interval_seconds
        backoff, waited, seen = interval, 0.0, self._unscheduled_runs
        while not self._stop.wait(interval):
            waited += interval
            if waited < backoff and self._unscheduled_runs == seen:
                continue
            try:
                idle = not self.run_schedule_once(schedule) and seen == self._unscheduled_runs
            except Exception as error:
                self._note_error(f"{schedule.function} failed: {error!r}")
                idle = False
            seen, waited = self._unscheduled_runs, 0.0
            backoff = min(2 * backoff, _IDLE_BACKOFF * interval) if idle else interval

    def _note_error(self, message: str) -> None:
        log.warning(message)
        self.errors.append(message)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of an SQS event, as Lambda builds it from a received message."""
    region = queue_arn.split(":")[3]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "dataType": value["DataType"],
                "stringListValues": [],
                "binaryListValues": [],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _schedule_event(schedule: ScheduleTrigger) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": [f"schedule:{schedule.expression}"],
        "detail": {},
    }
