"""Each model's breaker, as one item of the jobs table (`breaker#<model>`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sora_relay.adapters.line import millis
from sora_relay.domain.ports import BreakerState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_PREFIX = "breaker#"  # `#` is in no request_id: a breaker item is never a job


class DynamoBreakers:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def read(self, model: str) -> BreakerState:
        # Eventually consistent (half the price): a breaker opened a moment ago is seen a moment later.
        item = self._client.get_item(TableName=self._table, Key=_key(model)).get("Item")
        return _state(item) if item else BreakerState()

    def count_failure(self, model: str, now: datetime, threshold: int) -> BreakerState:
        answer = self._client.update_item(
            TableName=self._table,
            Key=_key(model),
            UpdateExpression="ADD failures :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
        state = _state(answer["Attributes"])
        if state.failures < threshold:
            return state
        # Opened (or, after a failed probe, opened again) now: its cool-down starts over.
        self._client.update_item(
            TableName=self._table,
            Key=_key(model),
            UpdateExpression="SET opened_at = :now REMOVE probe, probe_until",
            ExpressionAttributeValues={":now": {"N": str(millis(now))}},
        )
        return BreakerState(failures=state.failures, opened_at=now)

    def reset(self, model: str) -> None:
        # An update, not a delete: the functions' roles may put and update the table's items only.
        self._client.update_item(
            TableName=self._table,
            Key=_key(model),
            UpdateExpression="SET failures = :zero REMOVE opened_at, probe, probe_until",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )

    def take_probe(self, model: str, holder: str, cooled_before: datetime, now: datetime, until: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(model),
                UpdateExpression="SET probe = :me, probe_until = :until",
                ConditionExpression=(
                    "opened_at <= :cooled AND (attribute_not_exists(probe) OR probe = :me OR probe_until <= :now)"
                ),
                ExpressionAttributeValues={
                    ":me": {"S": holder},
                    ":until": {"N": str(millis(until))},
                    ":cooled": {"N": str(millis(cooled_before))},
                    ":now": {"N": str(millis(now))},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def states(self) -> dict[str, BreakerState]:
        states = {}
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(request_id, :prefix) AND failures > :zero",
            ExpressionAttributeValues={":prefix": {"S": _PREFIX}, ":zero": {"N": "0"}},
        ):
            for item in page.get("Items", []):
                states[item["request_id"]["S"].removeprefix(_PREFIX)] = _state(item)
        return states


def _key(model: str) -> dict[str, Any]:
    return {"request_id": {"S": f"{_PREFIX}{model}"}}


def _state(item: dict[str, Any]) -> BreakerState:
    def moment(name: str) -> datetime | None:
        return datetime.fromtimestamp(int(item[name]["N"]) / 1000, UTC) if name in item else None

    return BreakerState(
        failures=int(item.get("failures", {}).get("N", "0")),
        opened_at=moment("opened_at"),
        probe=item["probe"]["S"] if "probe" in item else None,
        probe_until=moment("probe_until"),
    )
