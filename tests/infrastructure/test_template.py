"""The template keeps the contract's promises (section 4) and passes cfn-lint."""

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from ..support.paths import ROOT, TEMPLATE
from ..support.template import load_template

CONTRACT_PARAMETERS = {
    "GeminiGenBaseUrl",
    "GeminiGenApiKeySecret",
    "ArchivePrefix",
    "PollIntervalSeconds",
    "MaxWaitMinutes",
    "AllowedMediaHosts",
    "MaxActiveGenerations",
    "ExtraModels",
    "DefaultModel",
}
CONTRACT_OUTPUTS = {"RequestQueueUrl", "CompletionTopicArn", "ArchiveBucketName", "JobsTableName"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_cfn_lint_finds_nothing() -> None:
    assert [str(match) for match in lint_file(Path(TEMPLATE))] == []


def test_contract_parameters_exist_and_only_the_secret_has_no_default(template) -> None:
    parameters = template["Parameters"]
    assert set(parameters) >= CONTRACT_PARAMETERS
    assert [name for name, spec in parameters.items() if "Default" not in spec] == ["GeminiGenApiKeySecret"]
    assert parameters["GeminiGenBaseUrl"]["Default"] == "https://api.geminigen.ai"
    assert parameters["ArchivePrefix"]["Default"] == "videos/"


def test_contract_outputs_exist(template) -> None:
    assert set(template["Outputs"]) >= CONTRACT_OUTPUTS


def test_every_sqs_trigger_reports_partial_batch_failures(template) -> None:
    triggers = [
        event["Properties"]
        for spec in functions(template).values()
        for event in spec.get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert len(triggers) == 4  # requests, hand-offs, sweeps, webhooks
    assert all(trigger["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for trigger in triggers)


def test_every_sqs_trigger_has_a_maximum_concurrency(template) -> None:
    triggers = {
        name: event["Properties"]
        for name, spec in functions(template).items()
        for event in spec.get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    assert all("MaximumConcurrency" in trigger.get("ScalingConfig", {}) for trigger in triggers.values()), triggers


def test_every_trigger_queue_has_a_dead_letter_queue(template) -> None:
    for spec in functions(template).values():
        for event in spec.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                assert "deadLetterTargetArn" in template["Resources"][queue]["Properties"]["RedrivePolicy"]


def test_poller_runs_on_a_schedule(template) -> None:
    events = functions(template)["PollFunction"]["Events"]
    assert [event["Type"] for event in events.values()] == ["Schedule"]


def test_every_handler_is_a_module_in_its_code_folder(template) -> None:
    for spec in functions(template).values():
        module, _, function = str(spec["Handler"]).rpartition(".")
        source = (ROOT / str(spec["CodeUri"]) / f"{module}.py").read_text()
        assert re.search(rf"^def {function}\(", source, re.MULTILINE)


def test_no_policy_grants_every_action_or_every_resource(template) -> None:
    documents = [
        policy for spec in functions(template).values() for policy in spec["Policies"] if "Statement" in policy
    ]
    documents += [
        resource["Properties"]["PolicyDocument"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    statements = [statement for document in documents for statement in document["Statement"]]
    assert len(statements) > 10
    for statement in statements:
        if "Fn::If" in statement:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(action.endswith("*") for action in actions)
        assert statement["Resource"] != "*"


def test_bucket_blocks_public_access_and_is_encrypted(template) -> None:
    bucket = template["Resources"]["ArchiveBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policy = template["Resources"]["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_every_function_logs_to_a_group_kept_log_retention_days(template) -> None:
    for name, spec in functions(template).items():
        group = template["Resources"][spec["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


@pytest.mark.parametrize("resource", ["JobsTable", "ArchiveBucket"])
def test_table_and_bucket_survive_stack_deletion_and_replacement(template, resource: str) -> None:
    kept = template["Resources"][resource]
    assert (kept["DeletionPolicy"], kept["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_jobs_table_has_deletion_protection(template) -> None:
    assert template["Resources"]["JobsTable"]["Properties"]["DeletionProtectionEnabled"] is True


def test_finished_jobs_are_kept_as_long_as_a_request_can_wait_in_its_queues(template) -> None:
    resources = template["Resources"]
    retention = sum(
        resources[queue]["Properties"]["MessageRetentionPeriod"] for queue in ("RequestQueue", "RequestDeadLetterQueue")
    )
    assert template["Parameters"]["FinishedJobTtlDays"]["MinValue"] * 86400 >= retention


def test_archive_function_writes_only_under_the_archive_prefix(template) -> None:
    statements = functions(template)["ArchiveFunction"]["Policies"][0]["Statement"]
    s3_resources = {
        statement["Resource"]["Fn::Sub"]
        for statement in statements
        if any(action.startswith("s3:") for action in statement["Action"])
    }
    assert s3_resources == {"${ArchiveBucket.Arn}/${ArchivePrefix}*"}


def test_the_line_index_is_sparse_and_projects_only_its_keys(template) -> None:
    table = template["Resources"]["JobsTable"]["Properties"]
    [index] = [index for index in table["GlobalSecondaryIndexes"] if index["IndexName"] == "line"]
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["line", "line_order"]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_functions_that_start_requests_may_read_the_line_and_write_the_places(template) -> None:
    poller = template["Resources"]["PollerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    submit = functions(template)["SubmitFunction"]["Policies"][0]["Statement"]
    for statements in (poller, submit):
        actions = {action for statement in statements for action in _actions(statement)}
        assert {"dynamodb:UpdateItem", "dynamodb:Query"} <= actions
        line_index = {"Fn::Sub": "${JobsTable.Arn}/index/line"}
        assert any(
            line_index == statement["Resource"] or line_index in statement["Resource"]
            for statement in statements
            if "dynamodb:Query" in _actions(statement)
        )


def test_the_line_parameters_reach_every_function(template) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["MAX_ACTIVE_GENERATIONS"] == {"Ref": "MaxActiveGenerations"}
    assert variables["MAX_LINE_HOURS"] == {"Ref": "MaxLineHours"}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else action


def test_no_function_may_delete_jobs(template) -> None:
    # Nothing deletes a job: a finished one expires by its TTL, and a forgotten request_id
    # would be paid again.
    statements = [
        statement
        for properties in functions(template).values()
        for policy in properties.get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
    ]
    statements += template["Resources"]["PollerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert not [statement for statement in statements if "dynamodb:DeleteItem" in _actions(statement)]


def test_the_poll_parameters_reach_every_function_and_the_client(template) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POLL_SHARDS"] == {"Ref": "PollShards"}
    assert variables["POLL_CONCURRENCY"] == {"Ref": "PollConcurrency"}
    assert template["Outputs"]["PollShards"]["Value"] == {"Ref": "PollShards"}
