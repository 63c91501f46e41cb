"""Each function's AWS calls judged by its own role's statements, as IAM judges them on AWS.

The local stack runs every function with credentials of its own role (assumed through the
emulator's STS, as Lambda does) and refuses, with the SDK's own AccessDenied error, any call its
role's statements do not allow. moto's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`) cannot do
this: it judges DynamoDB, SNS and Secrets Manager calls against the resource `*`, so every
statement scoped to a table or a topic refuses, and it does not know IAM's `?` wildcard. The
calls are judged here instead, against the role documents the stack deployed, with the resource
each call names. Every allowed call is recorded too, so a test can say which grants are used.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlparse

from botocore import handlers
from botocore.awsrequest import AWSResponse, HTTPHeaders

ACCOUNT = "123456789012"  # moto's account
_PARAMS = "sora_relay_api_params"  # where a call's own parameters wait for its judgement

# The IAM action of an operation, where it is not the operation's own name.
_ACTIONS = {
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListParts": "s3:ListMultipartUploadParts",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}
# A transaction's items, by the operation IAM judges each as.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_DENIED_CODES = {"sns": "AuthorizationError", "s3": "AccessDenied"}


@dataclass(frozen=True, order=True)
class Call:
    """One IAM action on one resource."""

    action: str
    resource: str


def calls_of(service: str, operation: str, params: dict[str, Any], region: str, secrets: dict[str, str]) -> list[Call]:
    """The actions and resources IAM judges an SDK call by: one, or for a DynamoDB transaction
    one per item, judged as the item's own operation (IAM has no action for the transaction
    itself). `secrets` maps a secret's name to its ARN (IAM judges a secret read by name
    against the secret's ARN)."""
    if f"{service}:{operation}" == "dynamodb:TransactWriteItems":
        return [
            call_of(service, _TRANSACT_ACTIONS[kind], item[kind], region, secrets)
            for item in params.get("TransactItems", [])
            for kind in item
        ]
    return [call_of(service, operation, params, region, secrets)]


def call_of(service: str, operation: str, params: dict[str, Any], region: str, secrets: dict[str, str]) -> Call:
    """The action and resource IAM judges one SDK call by."""
    action = _ACTIONS.get(f"{service}:{operation}", f"{service}:{operation}")
    return Call(action, _resource(service, operation, params, region, secrets))


def _resource(service: str, operation: str, params: dict[str, Any], region: str, secrets: dict[str, str]) -> str:
    if service == "dynamodb" and "TableName" in params:
        table = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{params['TableName']}"
        return f"{table}/index/{params['IndexName']}" if "IndexName" in params else table
    if service == "sqs" and "QueueUrl" in params:
        return f"arn:aws:sqs:{region}:{ACCOUNT}:{urlparse(params['QueueUrl']).path.rsplit('/', 1)[-1]}"
    if service == "sns" and "TopicArn" in params:
        return str(params["TopicArn"])
    if service == "s3" and "Bucket" in params:
        if "Key" in params and operation != "ListObjectsV2":
            return f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
        return f"arn:aws:s3:::{params['Bucket']}"
    if service == "secretsmanager" and "SecretId" in params:
        return str(secrets.get(params["SecretId"], params["SecretId"]))
    return "*"


def allows(statements: list[dict[str, Any]], call: Call) -> bool:
    """IAM's evaluation for one identity policy set: an explicit Deny wins, else any Allow."""
    allowed = False
    for statement in statements:
        if _matches(statement.get("Action", []), call.action, ignore_case=True) and _matches(
            statement.get("Resource", "*"), call.resource, ignore_case=False
        ):
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


def _matches(patterns: str | list[str], value: str, *, ignore_case: bool) -> bool:
    listed = [patterns] if isinstance(patterns, str) else patterns
    return any(_pattern(pattern, ignore_case).fullmatch(value) for pattern in listed)


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM's wildcards: `*` any run of characters, `?` any one; actions compare without case.
    translated = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(translated, re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Identity:
    """A function as IAM knows it: its role's statements and the credentials it runs with."""

    function: str
    role_arn: str
    statements: list[dict[str, Any]]
    credentials: dict[str, str]  # aws_access_key_id, aws_secret_access_key, aws_session_token


class Permissions:
    """Judges and records the calls signed with each function's credentials; calls signed with
    other credentials (the operator's, a test's) pass unjudged."""

    def __init__(self, identities: list[Identity], secrets: dict[str, str]) -> None:
        self._by_key = {identity.credentials["aws_access_key_id"]: identity for identity in identities}
        self._secrets = secrets
        self._lock = threading.Lock()
        self.used: dict[str, set[Call]] = defaultdict(set)
        self.refused: dict[str, set[Call]] = defaultdict(set)

    def statements(self) -> dict[str, list[dict[str, Any]]]:
        """Each function's role statements (its logical id's)."""
        return {identity.function: identity.statements for identity in self._by_key.values()}

    def credentials(self, function: str) -> dict[str, str]:
        return next(identity.credentials for identity in self._by_key.values() if identity.function == function)

    @contextmanager
    def judging(self) -> Iterator[Permissions]:
        """Every SDK session made meanwhile judges its calls here (the handlers are botocore's
        built-in ones, which each new session registers, as moto's own in-process mock does)."""
        added = [("provide-client-params", self._keep_params), ("before-call", self._judge)]
        handlers.BUILTIN_HANDLERS.extend(added)
        try:
            yield self
        finally:
            for handler in added:
                handlers.BUILTIN_HANDLERS.remove(handler)

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS] = dict(params)

    def _judge(
        self, event_name: str, model: Any, request_signer: Any, context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        # The signer's credentials say who calls, as the request's signature tells IAM.
        credentials = getattr(request_signer, "_credentials", None)
        identity = self._by_key.get(getattr(credentials, "access_key", None) or "")
        if identity is None:
            return None
        service = model.service_model.signing_name
        calls = calls_of(service, model.name, context.get(_PARAMS, {}), context["client_region"], self._secrets)
        refused = [call for call in calls if not allows(identity.statements, call)]
        if not refused:
            with self._lock:
                self.used[identity.function].update(calls)
            return None
        call = refused[0]
        with self._lock:
            self.refused[identity.function].add(call)
        message = (
            f"User: {identity.role_arn} is not authorized to perform: {call.action} on resource: {call.resource} "
            f"because no identity-based policy allows the {call.action} action"
        )
        error = {"Code": _DENIED_CODES.get(service, "AccessDeniedException"), "Message": message}
        return AWSResponse("", 403, HTTPHeaders(), None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
