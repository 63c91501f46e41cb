"""The API keys' table: per key, an item by its name and one by its secret's hash (each call looks
a key up by its hash, with one read), written together; one item per key and minute that counts
its calls (gone a day later, by the table's TTL); and, for a key with daily credits, one item per
day with what its requests were priced at, and one per request that was counted (so each is
counted once), both gone a week later."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sora_relay.adapters.transactions import transact
from sora_relay.domain.keys import ApiKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_COUNT_KEPT = timedelta(days=1)
_SPENT_KEPT = timedelta(days=7)


class DynamoKeys:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def by_hash(self, hashed: str) -> ApiKey | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"key#{hashed}"}}).get("Item")
        return _key(item) if item else None

    def create(self, key: ApiKey, hashed: str) -> bool:
        fields = {"name": {"S": key.name}, "created_at": {"S": key.created_at.isoformat()}}
        if key.daily_credits is not None:
            fields["daily_credits"] = {"N": str(key.daily_credits)}
        cancelled = transact(
            self._client,
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {"pk": {"S": f"name#{key.name}"}, "hash": {"S": hashed}, **fields},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {"pk": {"S": f"key#{hashed}"}, **fields},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
        )
        # Taken, or written by this very call whose answer was lost (the SDK's retry then found
        # its own items): the name's item says which.
        return cancelled is None or self._hash_of(key.name) == hashed

    def _hash_of(self, name: str) -> str | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"name#{name}"}}, ConsistentRead=True).get(
            "Item"
        )
        return item["hash"]["S"] if item else None

    def revoke(self, name: str, now: datetime) -> bool:
        hashed = self._hash_of(name)
        if hashed is None:
            return False
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": pk}},
                        "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                        "ExpressionAttributeValues": {":now": {"S": now.isoformat()}},
                    }
                }
                for pk in (f"name#{name}", f"key#{hashed}")
            ]
        )
        return True

    def all(self) -> list[ApiKey]:
        keys = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :names)",
            ExpressionAttributeValues={":names": {"S": "name#"}},
        ):
            keys += [_key(item) for item in page.get("Items", [])]
        return sorted(keys, key=lambda key: key.name)

    def take_call(self, name: str, now: datetime, per_minute: int) -> bool:
        minute = now.strftime("%Y-%m-%dT%H:%M")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"calls#{name}#{minute}"}},
                UpdateExpression="ADD calls :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(calls) OR calls < :most",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":most": {"N": str(per_minute)},
                    ":expires": {"N": str(int((now + _COUNT_KEPT).timestamp()))},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def spend(self, name: str, request_id: str, day: date, amount: float, limit: float) -> bool:
        if amount > limit:
            return False
        expires = {"N": str(int((datetime.combine(day, time(), tzinfo=UTC) + _SPENT_KEPT).timestamp()))}
        counted = {
            "Put": {
                "TableName": self._table,
                "Item": {"pk": {"S": f"spent#{name}#{request_id}"}, "credits": _number(amount), "expires_at": expires},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        day_item = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": f"spent#{name}#{day.isoformat()}"}},
                "UpdateExpression": "ADD spent :amount SET expires_at = :expires",
                "ConditionExpression": "attribute_not_exists(spent) OR spent <= :room",
                "ExpressionAttributeValues": {
                    ":amount": _number(amount),
                    ":room": _number(limit - amount),
                    ":expires": expires,
                },
            }
        }
        cancelled = transact(self._client, [counted, day_item])
        # Counted already for this request (a repeat, or this very call whose answer was lost): it stands.
        return cancelled is None or cancelled[0] == "ConditionalCheckFailed"


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(value)))}


def _key(item: dict[str, Any]) -> ApiKey:
    revoked = item.get("revoked_at")
    daily = item.get("daily_credits")
    return ApiKey(
        name=item["name"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked["S"]) if revoked else None,
        daily_credits=float(daily["N"]) if daily else None,
    )
