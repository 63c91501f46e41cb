"""Each function runs as its own role from the template, and the local stack refuses what the
role does not allow, as AWS would: the daily credit budget settles with the poller's own
permissions, and every grant a role holds is one its function uses."""

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from sora_relay.domain.webhooks import shown_secret
from sora_relay_tools.local.permissions import Call, allows, calls_of
from sora_relay_tools.local.stack import LocalStack, Provider
from sora_relay_tools.simulator import Fault, GeminiGenSimulator

from ..support.paths import TEMPLATE
from ..support.receiver import WebhookReceiver

BUDGET = 1000
OVERRUN = 12  # what the costly generation uses beyond its quote
LARGE = 65 * 1024 * 1024
# A grant no drill here uses, and why it stays: (function, action), or a resource's name with it
# where only that resource goes unused.
UNUSED = {
    # A multipart upload aborted: only when a large video's upload fails midway.
    ("ArchiveFunction", "s3:AbortMultipartUpload"),
    # A hand-off delayed: only when every try of an invocation's copy failed (then it comes
    # again in 30 s; tests/e2e/test_every_job_ends.py drives it, on this enforced stack too).
    ("ArchiveFunction", "sqs:ChangeMessageVisibility"),
    # A shard handed to the sweep function: only when a poll ran out of time with due jobs left.
    ("PollFunction", "sqs:SendMessage", "SweepQueue"),
    # A download address is signed with the API's role and read by the caller over HTTP, not
    # through the SDK, so the judge here never sees it (moto serves it without judging); AWS
    # refuses it unless the role may read the object.
    ("ApiFunction", "s3:GetObject"),
}
# A grant the drill uses in most runs, not all: which function does it depends on which comes
# first. A place freed starts the head of the line with a resent message: by the poller that
# freed it, or by the submitter when a message arrives before the next poll.
BY_TIMING = {("SubmitFunction", "sqs:SendMessage", "RequestQueue")}


@pytest.fixture(scope="module")
def drilled() -> Iterator[tuple[LocalStack, GeminiGenSimulator, dict[str, dict[str, Any]]]]:
    """One stack with a budget and a reference bucket, through which requests of each kind run:
    completed (costing more than quoted), failed, with a reference file from either place or
    one that is not there,
    waiting in line, held behind a twin, one whose video address is refused once, and a video
    large enough to be uploaded in parts; then the HTTP API's calls (one with an upload, one
    canceled while it waits in line) and webhooks (refused once; a message that is no event)."""

    def used(generation: Any) -> float:
        if generation.fails:
            return 0
        return generation.estimated_credit + (OVERRUN if "costly" in generation.fields["prompt"] else 0)

    with GeminiGenSimulator(generation_seconds=2, credit_used=used) as simulator:
        provider = Provider(simulator.base_url, simulator.api_key)
        parameters = {
            "PollIntervalSeconds": "1",
            "DailyCreditBudget": str(BUDGET),
            "MaxActiveGenerations": "2",
            "ReferenceBucketNames": "sora-relay-references",
            "CallbacksAllowPrivate": "true",
        }
        with LocalStack(TEMPLATE, provider, schedule_interval=0.3, parameters=parameters) as stack:
            stack.client("s3").create_bucket(Bucket="sora-relay-references")
            stack.client("s3").put_object(Bucket="sora-relay-references", Key="cat.png", Body=PNG)
            bucket = stack.outputs["ArchiveBucketName"]
            secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.outputs["WebhookSecretArn"])
            receiver = WebhookReceiver(shown_secret(secret["SecretString"].encode()), refuse_first=1)
            requests = [
                {"request_id": "costly", "prompt": "a costly fox in the snow", "callback_url": receiver.url},
                {"request_id": "failing", "prompt": "[fail] a storm over the sea"},
                # Read once its turn comes: it fails, and its place goes to the next in line.
                {"request_id": "missing", "prompt": "a ghost in a hall", "files": [f"s3://{bucket}/inputs/none.png"]},
                {
                    "request_id": "referenced",
                    "prompt": "a cat on a wall",
                    "files": ["s3://sora-relay-references/cat.png"],
                },
                {"request_id": "uploaded", "prompt": "a dog in the rain", "files": [f"s3://{bucket}/inputs/dog.png"]},
                {"request_id": "waiting", "prompt": "a heron by the river"},
                # The history could not tell it from "waiting": it waits for that one's attempt.
                {"request_id": "twin", "prompt": "a heron by the river"},
            ]
            # The first download is refused: the archive reads the address again from the provider.
            simulator.inject("media", Fault(status=403))
            stack.client("s3").put_object(Bucket=bucket, Key="inputs/dog.png", Body=PNG)
            for request in requests:
                stack.send(request)
            finals = wait_for_finals(stack, {request["request_id"] for request in requests})
            # Then a video above 64 MiB: spooled, uploaded in parts, its checksum read back.
            simulator.video_size = LARGE
            stack.send({"request_id": "large", "prompt": "a long tracking shot through a forest"})
            finals |= wait_for_finals(stack, {"large"})
            simulator.video_size = None
            finals |= through_the_api(stack, simulator)
            # A message on the webhook queue that is no event: dead-lettered at once.
            stack.client("sqs").send_message(QueueUrl=stack.outputs["WebhookQueueUrl"], MessageBody="not an event")
            deadline = time.monotonic() + 30
            while len(receiver.verified("costly")) < 2 or not dead_lettered_webhooks(stack):
                assert time.monotonic() < deadline, "the webhooks were not delivered and dead-lettered"
                time.sleep(0.2)
            receiver.close()
            yield stack, simulator, finals


def through_the_api(stack: LocalStack, simulator: GeminiGenSimulator) -> dict[str, dict[str, Any]]:
    """A request with an upload made, downloaded, listed and deleted over the HTTP API; one
    canceled while it waits in line (both places held by generations the simulator holds)."""
    # Each call waits its turn with the functions' other invocations (the local stack runs one at a time).
    api = httpx.Client(
        timeout=60,
        base_url=stack.outputs["ApiUrl"],
        headers={"Authorization": f"Bearer {stack.create_key('drill', daily_credits=10_000)}"},
    )
    held = ["a slow crane one", "a slow crane two"]
    for prompt in held:
        simulator.hold(prompt)
        stack.send({"request_id": prompt.replace(" ", "-"), "prompt": prompt})
    wait_until(lambda: all((stack.job(p.replace(" ", "-")) or {}).get("state") == "submitted" for p in held))
    waiting = api.post("/videos", json={"prompt": "a kite that is never made"}).json()["id"]
    wait_until(lambda: "line" in (stack.job(waiting) or {}))
    assert api.delete(f"/videos/{waiting}").json()["deleted"]
    for prompt in held:
        simulator.release(prompt)
    form = {"prompt": "the pictured dog waves", "model": "veo-3.1-fast"}
    made = api.post("/videos", data=form, files={"input_reference": ("dog.png", PNG, "image/png")}).json()["id"]
    finals = wait_for_finals(stack, {made, waiting, *(p.replace(" ", "-") for p in held)})
    assert api.get(f"/videos/{made}/content", follow_redirects=True).content
    assert [video["id"] for video in api.get("/videos").json()["data"]] == [made, waiting]
    assert api.delete(f"/videos/{made}").json()["deleted"]
    return finals


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def dead_lettered_webhooks(stack: LocalStack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs["WebhookDeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def wait_for_finals(stack: LocalStack, request_ids: set[str], timeout: float = 90) -> dict[str, dict[str, Any]]:
    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while set(finals) != request_ids:
        assert time.monotonic() < deadline, f"no final event for {request_ids - set(finals)}"
        for event in stack.drain_events():
            if event["event"] in {"video.completed", "video.failed"}:
                finals[event["request_id"]] = event
        time.sleep(0.2)
    return finals


def spent_today(stack: LocalStack) -> float:
    days = [
        item
        for item in stack.client("dynamodb").scan(TableName=stack.outputs["JobsTableName"])["Items"]
        if item["request_id"]["S"].startswith("budget#2")
    ]
    return sum(float(item["spent"]["N"]) for item in days)


def test_budget_settles_to_what_generations_used_with_each_functions_own_permissions(drilled) -> None:
    stack, _, finals = drilled
    assert {
        request_id: event["event"]
        for request_id, event in finals.items()
        if not request_id.startswith(("video_", "a-slow-crane"))
    } == {
        "costly": "video.completed",
        "failing": "video.failed",
        "missing": "video.failed",
        "referenced": "video.completed",
        "uploaded": "video.completed",
        "waiting": "video.completed",
        "twin": "video.completed",
        "large": "video.completed",
    }
    used = sum(event["provider"]["used_credit"] for event in finals.values() if event["event"] == "video.completed")
    # The failed generation's quote was given back; the costly one's overrun was added.
    assert finals["costly"]["provider"]["used_credit"] == finals["costly"]["provider"]["estimated_credit"] + OVERRUN
    assert spent_today(stack) == used
    assert stack.permissions is not None
    assert dict(stack.permissions.refused) == {}


def test_archived_videos_are_the_providers(drilled) -> None:
    stack, simulator, finals = drilled
    video = finals["costly"]["video"]
    made = simulator.video_bytes(simulator.generations[finals["costly"]["provider"]["uuid"]])
    assert stack.client("s3").get_object(Bucket=video["bucket"], Key=video["key"])["Body"].read() == made
    large = finals["large"]["video"]
    assert stack.client("s3").head_object(Bucket=large["bucket"], Key=large["key"])["ContentLength"] == LARGE


def test_call_outside_a_functions_role_is_refused_as_aws_refuses_it(drilled) -> None:
    stack, _, _ = drilled
    assert stack.permissions is not None
    as_poller = boto3.Session(**stack.permissions.credentials("PollFunction")).client("dynamodb")
    with pytest.raises(ClientError) as refused:
        as_poller.delete_item(TableName=stack.outputs["JobsTableName"], Key={"request_id": {"S": "costly"}})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:DeleteItem" in str(refused.value)
    assert stack.job("costly") is not None


def test_every_action_a_role_grants_is_one_its_function_used(drilled) -> None:
    stack, _, _ = drilled
    assert stack.permissions is not None
    for functions, statements in _by_policy(stack.permissions.statements()):
        granted = {action for statement in statements for action in _listed(statement["Action"])}
        used = {call.action for function in functions for call in stack.permissions.used[function]}
        assert used <= granted
        unused = {entry[1] for entry in UNUSED if entry[0] in functions and len(entry) == 2}
        by_timing = {entry[1] for entry in BY_TIMING if entry[0] in functions}
        assert (granted - used) - by_timing == unused, functions


def test_every_resource_a_role_grants_is_one_its_function_used(drilled) -> None:
    stack, _, _ = drilled
    assert stack.permissions is not None
    for functions, statements in _by_policy(stack.permissions.statements()):
        used = {call for function in functions for call in stack.permissions.used[function]}
        for statement in statements:
            for action in _listed(statement["Action"]):
                calls = [call for call in used if call.action == action]
                for resource in _listed(statement["Resource"]):
                    if any(_unused(entry, functions, action, resource) for entry in UNUSED | BY_TIMING):
                        continue
                    assert any(allows([{"Action": action, "Resource": resource}], call) for call in calls), (
                        functions,
                        action,
                        resource,
                    )


def _unused(entry: tuple[str, ...], functions: set[str], action: str, resource: str) -> bool:
    return entry[0] in functions and entry[1] == action and (len(entry) == 2 or entry[2] in resource)


def _by_policy(statements: dict[str, list[dict[str, Any]]]) -> list[tuple[set[str], list[dict[str, Any]]]]:
    """Functions grouped by the statements they share (the poll and sweep functions do the same
    work, on all shards or on one, under one policy), with those statements."""
    groups: list[tuple[set[str], list[dict[str, Any]]]] = []
    for function, listed in statements.items():
        shared = next((group for group in groups if group[1] == listed), None)
        if shared is None:
            groups.append(({function}, listed))
        else:
            shared[0].add(function)
    return groups


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_judgement_matches_iam_wildcards() -> None:
    secret = {"Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:r:1:secret:key-??????"}
    assert allows([secret], Call("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:key-AbC123"))
    assert not allows([secret], Call("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:key-AbC1234"))
    assert not allows([secret], Call("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:other-AbC123"))
    table = {"Action": ["dynamodb:GetItem"], "Resource": "arn:aws:dynamodb:r:1:table/jobs"}
    assert not allows([table], Call("dynamodb:Query", "arn:aws:dynamodb:r:1:table/jobs/index/line"))
    denied = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}
    get = Call("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/jobs")
    assert allows([table], get)
    assert not allows([{**table, "Effect": "Allow"}, denied], get)


def test_a_transaction_is_judged_as_each_of_its_items_own_operation() -> None:
    items = [
        {"Put": {"TableName": "jobs", "Item": {}}},
        {"Update": {"TableName": "jobs", "Key": {}, "UpdateExpression": "ADD spent :amount"}},
    ]
    calls = calls_of("dynamodb", "TransactWriteItems", {"TransactItems": items}, "r", {})
    table = "arn:aws:dynamodb:r:123456789012:table/jobs"
    assert calls == [Call("dynamodb:PutItem", table), Call("dynamodb:UpdateItem", table)]
    only_update = {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": table}
    assert [allows([only_update], call) for call in calls] == [False, True]
