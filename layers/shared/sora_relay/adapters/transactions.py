"""A DynamoDB transaction whose conditions may fail, read as its callers need it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def transact(client: DynamoDBClient, items: list[Any]) -> list[str] | None:
    """None when the transaction landed; else each item's cancellation code ("None" for one whose
    condition held), when a condition failed. Any other cancellation (a conflict with another
    transaction, throttling) is raised: the caller's fault handling, never a failed condition."""
    try:
        client.transact_write_items(TransactItems=items)
    except client.exceptions.TransactionCanceledException as error:
        reasons = error.response.get("CancellationReasons", [])
        codes = [reason.get("Code", "None") for reason in reasons]
        if not any(code == "ConditionalCheckFailed" for code in codes):
            raise
        return codes
    return None
