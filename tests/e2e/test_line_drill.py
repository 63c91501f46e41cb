"""The line drill: the stack's functions on the local stack (moto, the simulator, one virtual
clock) with an account that runs 4 generations at once and refuses a fifth with its capacity 400."""

import statistics
from collections.abc import Iterator

import pytest

from sora_relay_tools.local.virtual import PlannedJob, VirtualStack, virtual_stack

from ..support.paths import TEMPLATE

GENERATION_SECONDS = 150.0
SUBMIT_BATCH = 10  # the submit trigger's BatchSize


@pytest.fixture(scope="module")
def drill() -> Iterator[tuple[VirtualStack, list[str], dict[str, float], int]]:
    """40 normal requests at once, then 4 of high priority, MaxActiveGenerations=4, run to the end."""
    normal = [
        PlannedJob(
            {"request_id": f"n-{number:02}", "prompt": f"take {number}: a lighthouse at dusk"}, GENERATION_SECONDS
        )
        for number in range(40)
    ]
    high = [
        PlannedJob(
            {"request_id": f"h-{number}", "prompt": f"storm {number}: a ship at sea", "priority": "high"},
            GENERATION_SECONDS,
        )
        for number in range(4)
    ]
    with virtual_stack(TEMPLATE, environment={"MAX_ACTIVE_GENERATIONS": "4"}) as stack:
        stack.simulator.max_running = 4
        batch = stack.run(normal + high)
        finished = {job.request_id: job.finished_at.timestamp() for job in batch.jobs if job.announced_at}
        dead_letters = stack.stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.stack.outputs["RequestDeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        yield stack, [job.body["request_id"] for job in normal + high], finished, int(dead_letters)


def test_every_request_completes(drill) -> None:
    stack, sent, finished, _ = drill
    assert sorted(finished) == sorted(sent)
    completed = [e for e in stack.stack.drain_events() if e["event"] == "video.completed"]
    assert completed == []  # drained as they came: none left over, none twice


def test_the_account_never_runs_more_than_its_four(drill) -> None:
    stack, *_ = drill
    assert stack.simulator.most_running == 4


def test_at_most_a_handful_of_capacity_refusals(drill) -> None:
    stack, *_ = drill
    assert stack.simulator.capacity_refusals <= 3


def test_nothing_goes_to_a_dead_letter_queue(drill) -> None:
    *_, dead_letters = drill
    assert dead_letters == 0


def test_high_priority_finishes_before_most_of_the_normal_requests(drill) -> None:
    _, _, finished, _ = drill
    normal_median = statistics.median(at for request_id, at in finished.items() if request_id.startswith("n-"))
    assert all(finished[f"h-{number}"] < normal_median for number in range(4))


def test_normal_requests_complete_in_the_order_they_arrived(drill) -> None:
    """In send order, no request finishes after one sent later; only the first submit batch's
    ten, read at one instant by concurrent workers, start in the order their workers got there."""
    _, sent, finished, _ = drill
    normal = [request_id for request_id in sent if request_id.startswith("n-")]
    overtaken = [
        (earlier, later)
        for index, earlier in enumerate(normal)
        for later in normal[index + 1 :]
        if finished[earlier] > finished[later] and normal.index(later) >= SUBMIT_BATCH
    ]
    assert overtaken == []
