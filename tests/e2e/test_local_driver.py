"""The local driver steps a function as Lambda would: failures come back, then go to the dead-letter queue."""

from collections.abc import Iterator

import pytest

from sora_relay_tools.local.stack import LocalStack, Provider

from ..support.paths import TEMPLATE


@pytest.fixture(scope="module")
def stepped_stack(module_simulator) -> Iterator[LocalStack]:
    provider = Provider(module_simulator.base_url, module_simulator.api_key)
    with LocalStack(TEMPLATE, provider, in_process=True, drive=False) as stack:
        yield stack


def test_message_that_fails_too_often_ends_in_its_dead_letter_queue(stepped_stack) -> None:
    stack = stepped_stack
    trigger = next(t for t in stack.deployed.queue_triggers if t.function == "ArchiveFunction")
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=trigger.queue_url, MessageBody="not a hand-off")
    deliveries = 0
    while messages := stack.driver.receive(trigger):
        failed = stack.driver.deliver(trigger, messages)
        assert len(failed) == 1
        deliveries += 1
        # As if the visibility timeout had passed.
        sqs.change_message_visibility(QueueUrl=trigger.queue_url, ReceiptHandle=failed[0], VisibilityTimeout=0)
    assert deliveries == 5  # the archive queue's maxReceiveCount
    dead = sqs.receive_message(QueueUrl=stack.outputs["ArchiveDeadLetterQueueUrl"]).get("Messages", [])
    assert [message["Body"] for message in dead] == ["not a hand-off"]
