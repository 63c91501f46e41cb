"""The daily credit budget, kept as items of the jobs table.

One item per day, keyed `budget#YYYY-MM-DD`, holds what the day has spent; the latest quote of
each kind is in `budget#quotes`; and each attempt's reservation is an item of its own,
`budget#attempt#<attempt_id>`, holding its day and what it counts now. Every change to a day is
made in one transaction with its attempt's item, on a condition that item states: so each change
lands once, whoever makes it and however often (an SDK retry after a lost answer, two
invocations settling the same attempt, a job taken over after a crash), and a reservation is
given back on the day it was taken. (No request_id can take these forms: `#` is not allowed in one.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from sora_relay.adapters.transactions import transact
from sora_relay.domain.ports import DayLedger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# An attempt's item moved between its read and the change (another settled it): read again.
_TRIES = 3


class DynamoCreditLedger:
    _QUOTES_KEY: ClassVar[dict[str, Any]] = {"request_id": {"S": "budget#quotes"}}

    def __init__(self, client: DynamoDBClient, table_name: str, *, keep: timedelta = timedelta(days=7)) -> None:
        self._client = client
        self._table = table_name
        self._keep = keep

    def day(self, day: date) -> DayLedger:
        spent = self._read(self._day_key(day)).get("spent", 0)
        return DayLedger(spent=float(spent), quotes=self.quotes())

    def quotes(self) -> dict[str, float]:
        quotes = self._read(self._QUOTES_KEY)
        quotes.pop("request_id", None)
        return {kind: float(quote) for kind, quote in quotes.items()}

    def reserve(self, attempt_id: str, day: date, amount: float, limit: float) -> bool:
        if amount > limit:
            return False  # nothing spent yet would make room for it
        attempt = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **self._attempt_key(attempt_id),
                    "day": {"S": day.isoformat()},
                    "counted": _credits(amount),
                    "expires_at": {"N": str(self._expires(day))},
                },
                "ConditionExpression": "attribute_not_exists(request_id)",
            }
        }
        spend = self._change_day(day, amount)
        spend["Update"]["ConditionExpression"] = "attribute_not_exists(spent) OR spent <= :room"
        spend["Update"]["ExpressionAttributeValues"][":room"] = _credits(limit - amount)
        cancelled = transact(self._client, [attempt, spend])
        # Made already (this very reservation, its answer lost): it stands.
        return cancelled is None or cancelled[0] == "ConditionalCheckFailed"

    def count(self, attempt_id: str, amount: float, *, used: bool) -> None:
        # The quote, then what was used: once each, and never the quote after what was used.
        if used:
            self._move(attempt_id, amount, "used", after_none_of=("released", "used"))
        else:
            self._move(attempt_id, amount, "quoted", after_none_of=("released", "used", "quoted"))

    def release(self, attempt_id: str) -> None:
        self._move(attempt_id, 0, "released", after_none_of=("released", "used"))

    def quote(self, kind: str, amount: float) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._QUOTES_KEY,
            UpdateExpression="SET #kind = :quote",
            ExpressionAttributeNames={"#kind": kind},
            ExpressionAttributeValues={":quote": _credits(amount)},
        )

    def _move(self, attempt_id: str, amount: float, stage: str, *, after_none_of: tuple[str, ...]) -> None:
        """The attempt's count set to `amount` and marked `stage`, and its day moved by the
        difference, in one transaction, while none of the stages `after_none_of` is marked
        (else nothing changes)."""
        condition = " AND ".join(f"attribute_not_exists({marked})" for marked in after_none_of)
        for _ in range(_TRIES):
            item = self._read(self._attempt_key(attempt_id))
            if not item:
                return  # never reserved (nothing was spent under it), or expired long since
            counted = float(item["counted"])
            update: TransactWriteItemTypeDef = {
                "Update": {
                    "TableName": self._table,
                    "Key": self._attempt_key(attempt_id),
                    "UpdateExpression": f"SET {stage} = :true, counted = :credits",
                    "ConditionExpression": f"{condition} AND counted = :counted",
                    "ExpressionAttributeValues": {
                        ":true": {"BOOL": True},
                        ":credits": _credits(amount),
                        ":counted": _credits(counted),
                    },
                }
            }
            cancelled = transact(
                self._client, [update, self._change_day(date.fromisoformat(item["day"]), amount - counted)]
            )
            if cancelled is None:
                return
            if cancelled[0] == "ConditionalCheckFailed" and not self._still_open(attempt_id, after_none_of, counted):
                return  # made already, or past the stage this change is for
        raise RuntimeError(f"the budget could not settle attempt {attempt_id}: it kept moving")

    def _still_open(self, attempt_id: str, after_none_of: tuple[str, ...], counted: float) -> bool:
        """Whether a change that failed its condition may still be made (only its count moved)."""
        item = self._read(self._attempt_key(attempt_id))
        return bool(item) and not any(marked in item for marked in after_none_of) and float(item["counted"]) != counted

    def _change_day(self, day: date, amount: float) -> Any:  # a TransactWriteItem
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._day_key(day),
                "UpdateExpression": "ADD spent :amount SET expires_at = :expires",
                "ExpressionAttributeValues": {":amount": _credits(amount), ":expires": {"N": str(self._expires(day))}},
            }
        }

    def _read(self, key: dict[str, Any]) -> dict[str, Any]:
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item", {})
        return {name: _deserializer.deserialize(value) for name, value in item.items()}

    @staticmethod
    def _day_key(day: date) -> dict[str, Any]:
        return {"request_id": {"S": f"budget#{day.isoformat()}"}}

    @staticmethod
    def _attempt_key(attempt_id: str) -> dict[str, Any]:
        return {"request_id": {"S": f"budget#attempt#{attempt_id}"}}

    def _expires(self, day: date) -> int:
        return int((datetime.combine(day, datetime.min.time(), tzinfo=UTC) + self._keep).timestamp())


def _credits(value: float) -> Any:  # an AttributeValue
    return _serializer.serialize(Decimal(str(value)))
