"""The daily credit budget, kept as items of the jobs table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from sora_relay.domain.ports import DayLedger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoCreditLedger:
    """The credit budget as items of the jobs table: one per day, keyed `budget#YYYY-MM-DD`,
    and the latest quote of each kind in `budget#quotes` (no request_id can take these forms:
    `#` is not allowed in one)."""

    _QUOTES_KEY: ClassVar[dict[str, Any]] = {"request_id": {"S": "budget#quotes"}}

    def __init__(self, client: DynamoDBClient, table_name: str, *, keep: timedelta = timedelta(days=7)) -> None:
        self._client = client
        self._table = table_name
        self._keep = keep

    def day(self, day: date) -> DayLedger:
        spent = self._read(self._key(day)).get("spent", 0)
        quotes = self._read(self._QUOTES_KEY)
        quotes.pop("request_id", None)
        return DayLedger(spent=float(spent), quotes={kind: float(quote) for kind, quote in quotes.items()})

    def _read(self, key: dict[str, Any]) -> dict[str, Any]:
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item", {})
        return {name: _deserializer.deserialize(value) for name, value in item.items()}

    def reserve(self, day: date, amount: float, limit: float) -> bool:
        if amount > limit:
            return False  # nothing spent yet would make room for it
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(day),
                UpdateExpression="ADD spent :amount SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(spent) OR spent <= :room",
                ExpressionAttributeValues={
                    ":amount": _credits(amount),
                    ":room": _credits(limit - amount),
                    ":expires": {"N": str(self._expires(day))},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def adjust(self, day: date, amount: float, quote: tuple[str, float] | None = None) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._key(day),
            UpdateExpression="ADD spent :amount",
            ExpressionAttributeValues={":amount": _credits(amount)},
        )
        if quote is not None:
            self._client.update_item(
                TableName=self._table,
                Key=self._QUOTES_KEY,
                UpdateExpression="SET #kind = :quote",
                ExpressionAttributeNames={"#kind": quote[0]},
                ExpressionAttributeValues={":quote": _credits(quote[1])},
            )

    @staticmethod
    def _key(day: date) -> dict[str, Any]:
        return {"request_id": {"S": f"budget#{day.isoformat()}"}}

    def _expires(self, day: date) -> int:
        return int((datetime.combine(day, datetime.min.time(), tzinfo=UTC) + self._keep).timestamp())


def _credits(value: float) -> Any:  # an AttributeValue
    return _serializer.serialize(Decimal(str(value)))
