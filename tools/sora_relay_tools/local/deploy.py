"""Deploying template.yaml into moto: package, SAM-transform, CloudFormation, then read back."""

from __future__ import annotations

import ast
import copy
import functools
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
_SECRET = "AWS::SecretsManager::Secret"  # noqa: S105  # nosec B105  # a resource type
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function, as its configuration says, with the source folder it came from."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    role_arn: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]


@dataclass(frozen=True)
class QueueTrigger:
    function: str
    queue_url: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class ScheduleTrigger:
    function: str
    expression: str
    interval_seconds: float


@dataclass(frozen=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]
    functions: dict[str, FunctionSpec]
    queue_triggers: list[QueueTrigger]
    schedules: list[ScheduleTrigger]


def schedule_interval(expression: str) -> float:
    """Seconds between runs of a `rate(...)` schedule (the only kind the local driver keeps)."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise ValueError(f"only rate(...) schedules run locally, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def deploy(
    template_path: Path, *, stack_name: str, parameters: dict[str, str], secret_name: str, api_key: str
) -> DeployedStack:
    """Deploy the template into the AWS the SDK points at (moto, through AWS_ENDPOINT_URL)."""
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(_parsed(template_path.resolve(), template_path.stat().st_mtime_ns))
    code_dirs = _package(template, template_path.parent.resolve(), f"{stack_name}-artifacts")
    boto3.client("secretsmanager").create_secret(Name=secret_name, SecretString=api_key)
    all_parameters = {**parameters, "GeminiGenApiKeySecret": secret_name}
    translated = transform(template, all_parameters, ManagedPolicyLoader(boto3.client("iam")))
    _make_secrets(translated, stack_name)
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(translated),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in all_parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    physical = _physical_ids(stack_name)
    _complete_roles(translated, physical)
    _complete_subscriptions(translated, physical)
    return _read_back(stack_name, template, code_dirs, physical)


@functools.cache
def _parsed(template_path: Path, modified: int) -> dict[str, Any]:
    """The template as read, once per version of the file: parsing its YAML is a third of a local
    deploy, and the drills deploy it again and again (each takes a copy, which it changes)."""
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(template_path.read_text())
    return parsed


def _complete_roles(translated: dict[str, Any], physical: dict[str, str]) -> None:
    """Attach the stack's own managed policies to its roles, as CloudFormation does on AWS and
    moto's does not. AWS-managed ones (logs, X-Ray: Lambda's own, never called by the code)
    are not in the emulator."""
    iam = boto3.client("iam")
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            if isinstance(arn, dict) and "Ref" in arn:
                iam.attach_role_policy(RoleName=physical[logical_id].rsplit("/", 1)[-1], PolicyArn=physical[arn["Ref"]])


def _make_secrets(translated: dict[str, Any], stack_name: str) -> None:
    """Make the stack's own secrets, which moto's CloudFormation does not, as CloudFormation makes
    them (a generated string), and put each one's ARN where the template refers to it."""
    secrets = boto3.client("secretsmanager")
    resources = translated["Resources"]
    for logical_id in [name for name, resource in resources.items() if resource["Type"] == _SECRET]:
        generated = resources.pop(logical_id)["Properties"].get("GenerateSecretString", {})
        value = secrets.get_random_password(
            PasswordLength=generated.get("PasswordLength", 32),
            ExcludePunctuation=generated.get("ExcludePunctuation", False),
        )["RandomPassword"]
        arn = secrets.create_secret(Name=f"{stack_name}-{logical_id}", SecretString=value)["ARN"]
        translated["Resources"] = _replace_ref(resources, logical_id, arn)
        translated["Outputs"] = _replace_ref(translated.get("Outputs", {}), logical_id, arn)
        resources = translated["Resources"]


def _replace_ref(document: Any, logical_id: str, value: str) -> Any:
    if isinstance(document, dict):
        if document == {"Ref": logical_id}:
            return value
        return {key: _replace_ref(item, logical_id, value) for key, item in document.items()}
    if isinstance(document, list):
        return [_replace_ref(item, logical_id, value) for item in document]
    return document


def _complete_subscriptions(translated: dict[str, Any], physical: dict[str, str]) -> None:
    """Subscribe the stack's queues to its topics, as CloudFormation does on AWS and moto's does
    not, with their delivery and filter attributes (an e-mail subscription has no one to reach here)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    for resource in translated["Resources"].values():
        if resource["Type"] != "AWS::SNS::Subscription" or resource["Properties"]["Protocol"] != "sqs":
            continue
        properties = resource["Properties"]
        target = properties["Endpoint"]["Fn::GetAtt"]  # [queue, "Arn"], or "queue.Arn"
        queue_url = physical[target[0] if isinstance(target, list) else target.split(".")[0]]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": str(properties.get("RawMessageDelivery", False)).lower()}
        if "FilterPolicy" in properties:
            attributes["FilterPolicy"] = json.dumps(properties["FilterPolicy"])
            attributes["FilterPolicyScope"] = properties.get("FilterPolicyScope", "MessageAttributes")
        sns.subscribe(
            TopicArn=physical[properties["TopicArn"]["Ref"]],
            Protocol=properties["Protocol"],
            Endpoint=queue_arn,
            Attributes=attributes,
        )


def role_statements(role_arn: str) -> list[dict[str, Any]]:
    """Every statement of a role's inline and attached policies, as IAM holds them."""
    iam = boto3.client("iam")
    role = role_arn.rsplit("/", 1)[-1]
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        policy = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
        documents.append(policy["Document"])
    statements: list[dict[str, Any]] = []
    for document in documents:
        parsed = _document(document)
        listed = parsed["Statement"]
        # moto's CloudFormation leaves an `AWS::NoValue` statement as None where AWS drops it.
        statements += [statement for statement in (listed if isinstance(listed, list) else [listed]) if statement]
    return statements


def _document(document: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    try:
        parsed: dict[str, Any] = json.loads(document)
    except json.JSONDecodeError:
        # moto's CloudFormation keeps a role's inline policy as Python's text of a dict.
        parsed = ast.literal_eval(document)
    return parsed


def _physical_ids(stack_name: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation")
    return {
        resource["LogicalResourceId"]: resource.get("PhysicalResourceId", "")
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for resource in page["StackResourceSummaries"]
    }


def _package(template: dict[str, Any], root: Path, bucket: str) -> dict[str, Path]:
    """Zip each local CodeUri/ContentUri into an artifact bucket, as `sam package` does."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    code_dirs = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            location = properties.get(key)
            if isinstance(location, str) and not location.startswith("s3://"):
                folder = (root / location).resolve()
                code_dirs[logical_id] = folder
                s3.put_object(Bucket=bucket, Key=f"{logical_id}.zip", Body=_zip(folder))
                properties[key] = f"s3://{bucket}/{logical_id}.zip"
    return code_dirs


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def _read_back(
    stack_name: str, template: dict[str, Any], code_dirs: dict[str, Path], physical: dict[str, str]
) -> DeployedStack:
    cloudformation = boto3.client("cloudformation")
    lambda_client = boto3.client("lambda")
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    functions: dict[str, FunctionSpec] = {}
    triggers: list[QueueTrigger] = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != SERVERLESS_FUNCTION:
            continue
        configuration = lambda_client.get_function_configuration(FunctionName=physical[logical_id])
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=configuration["FunctionName"],
            arn=configuration["FunctionArn"],
            code_dir=code_dirs[logical_id],
            role_arn=configuration["Role"],
            handler=configuration["Handler"],
            timeout=configuration["Timeout"],
            memory=configuration["MemorySize"],
            # Lambda hands every variable over as a string (moto keeps numbers as given).
            environment={k: str(v) for k, v in configuration.get("Environment", {}).get("Variables", {}).items()},
        )
        for mapping in lambda_client.list_event_source_mappings(FunctionName=configuration["FunctionName"])[
            "EventSourceMappings"
        ]:
            queue_name = mapping["EventSourceArn"].rsplit(":", 1)[-1]
            triggers.append(
                QueueTrigger(
                    function=logical_id,
                    queue_url=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
                    batch_size=mapping.get("BatchSize", 10),
                    report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
                )
            )
            # The local driver is the mapping's poller now: moto must not try to run it itself.
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    schedules = []
    by_arn = {spec.arn: spec.logical_id for spec in functions.values()}
    for rule in events.list_rules()["Rules"]:
        if "ScheduleExpression" not in rule:
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if target["Arn"] in by_arn:
                expression = rule["ScheduleExpression"]
                schedules.append(ScheduleTrigger(by_arn[target["Arn"]], expression, schedule_interval(expression)))
    return DeployedStack(stack_name, outputs, functions, triggers, schedules)
