"""The line and the account's places, in the jobs table: waiting jobs carry the keys of the sparse
`line` index (their priority, then their arrival: adapters/dynamodb.py writes them), and the
places are one item, `line#places`, whose string set names their holders."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sora_relay.domain.ports import Places
from sora_relay.domain.request import Priority

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LINE_INDEX = "line"


class DynamoLine:
    # `#` is in no request_id: this item is never a job.
    _PLACES_KEY: ClassVar[dict[str, Any]] = {"request_id": {"S": "line#places"}}

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def head(self, limit: int) -> list[str]:
        ids: list[str] = []
        for priority in Priority:
            if len(ids) >= limit:
                break
            answer = self._client.query(
                TableName=self._table,
                IndexName=LINE_INDEX,
                KeyConditionExpression="line = :priority",
                ExpressionAttributeValues={":priority": {"S": priority.value}},
                Limit=limit - len(ids),
            )
            ids += [item["request_id"]["S"] for item in answer.get("Items", [])]
        return ids

    def in_order(self) -> Iterator[str]:
        """Every waiting request_id, in the order they start (a read of the whole line: for
        people asking where their requests stand; the functions read only its head)."""
        for priority in Priority:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=LINE_INDEX,
                KeyConditionExpression="line = :priority",
                ExpressionAttributeValues={":priority": {"S": priority.value}},
            )
            for page in pages:
                yield from (item["request_id"]["S"] for item in page.get("Items", []))

    def length(self, priority: str) -> tuple[int, datetime | None]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LINE_INDEX,
            "KeyConditionExpression": "line = :priority",
            "ExpressionAttributeValues": {":priority": {"S": priority}},
        }
        first = self._client.query(**arguments, Limit=1).get("Items", [])
        if not first:
            return 0, None
        count = 0
        # Only the index's keys are read: about 100 bytes a waiting job.
        for page in self._client.get_paginator("query").paginate(**arguments, Select="COUNT"):
            count += page["Count"]
        return count, _arrival(first[0]["line_order"]["S"])

    def places(self) -> Places:
        item = self._client.get_item(TableName=self._table, Key=self._PLACES_KEY, ConsistentRead=True).get("Item", {})

        def moment(name: str) -> datetime | None:
            return datetime.fromtimestamp(int(item[name]["N"]) / 1000, UTC) if name in item else None

        return Places(
            holders=frozenset(item.get("holders", {}).get("SS", [])),
            learned_limit=int(item["learned_limit"]["N"]) if "learned_limit" in item else None,
            learned_until=moment("learned_until"),
            resume_at=moment("resume_at"),
            refusals=int(item["refusals"]["N"]) if "refusals" in item else 0,
            reason=item["reason"]["S"] if "reason" in item else None,
            held_by=item["held_by"]["S"] if "held_by" in item else None,
        )

    def take_place(self, place: str, limit: int, now: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._PLACES_KEY,
                UpdateExpression="ADD holders :me",
                # Taken again by its holder (an answer lost, the SDK's retry) it stays taken.
                ConditionExpression=(
                    "contains(holders, :id) OR ((attribute_not_exists(holders) OR size(holders) < :limit)"
                    " AND (attribute_not_exists(resume_at) OR resume_at <= :now))"
                ),
                ExpressionAttributeValues={
                    ":me": {"SS": [place]},
                    ":id": {"S": place},
                    ":limit": {"N": str(limit)},
                    ":now": {"N": str(millis(now))},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def free_place(self, place: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._PLACES_KEY,
            UpdateExpression="DELETE holders :me",
            ExpressionAttributeValues={":me": {"SS": [place]}},
        )

    def hold_starts(self, reason: str | None) -> None:
        if reason is None:
            self._client.update_item(TableName=self._table, Key=self._PLACES_KEY, UpdateExpression="REMOVE held_by")
            return
        self._client.update_item(
            TableName=self._table,
            Key=self._PLACES_KEY,
            UpdateExpression="SET held_by = :reason",
            ExpressionAttributeValues={":reason": {"S": reason[:500]}},
        )

    def slow_down(self, learned_limit: int, learned_until: datetime, resume_at: datetime, reason: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._PLACES_KEY,
            UpdateExpression="SET learned_limit = :limit, learned_until = :until, resume_at = :resume,"
            " reason = :reason ADD refusals :one",
            ExpressionAttributeValues={
                ":limit": {"N": str(learned_limit)},
                ":until": {"N": str(millis(learned_until))},
                ":resume": {"N": str(millis(resume_at))},
                ":reason": {"S": reason[:500]},
                ":one": {"N": "1"},
            },
        )

    def speed_up(self, refusals: int) -> None:
        # A refusal that came after the acceptance was seen keeps its pause.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key=self._PLACES_KEY,
                UpdateExpression="SET refusals = :zero REMOVE resume_at, reason",
                ConditionExpression="refusals = :seen",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":seen": {"N": str(refusals)}},
            )


def millis(moment: datetime) -> int:
    """A moment as the jobs table stores it: whole milliseconds since the epoch, rounded up."""
    return math.ceil(moment.timestamp() * 1000)


def line_order(created_at: datetime, request_id: str) -> str:
    """A waiting job's sort key in the line index: its arrival, then its request_id."""
    return f"{millis(created_at):013d}#{request_id}"


def _arrival(order: str) -> datetime:
    """The arrival a `line_order` key holds."""
    return datetime.fromtimestamp(int(order.split("#", 1)[0]) / 1000, UTC)
