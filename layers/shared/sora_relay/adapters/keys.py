"""The API keys' table: per key, an item by its name and one by its secret's hash (each call looks
a key up by its hash, with one read), written together; and one item per key and minute that
counts its calls (gone a day later, by the table's TTL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sora_relay.domain.keys import ApiKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_COUNT_KEPT = timedelta(days=1)


class DynamoKeys:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def by_hash(self, hashed: str) -> ApiKey | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"key#{hashed}"}}).get("Item")
        return _key(item) if item else None

    def create(self, key: ApiKey, hashed: str) -> bool:
        fields = {"name": {"S": key.name}, "created_at": {"S": key.created_at.isoformat()}}
        try:
            self._client.transact_write_items(
                TransactItems=[
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
                ]
            )
        except self._client.exceptions.TransactionCanceledException:
            # Taken, or written by this very call whose answer was lost (the SDK's retry then
            # found its own items): the name's item says which.
            return self._hash_of(key.name) == hashed
        return True

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


def _key(item: dict[str, Any]) -> ApiKey:
    revoked = item.get("revoked_at")
    return ApiKey(
        name=item["name"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked["S"]) if revoked else None,
    )
