"""The jobs table: one item per request_id, and a sparse index of the jobs that owe work."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import ConfigDict, TypeAdapter

from sora_relay.adapters.line import line_order, millis
from sora_relay.domain.events import AttemptSummary, ProviderSummary, VideoEvent
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.ports import DuePage, StaleJob
from sora_relay.domain.request import VideoRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OUTSTANDING_INDEX = "outstanding"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def shard_of(request_id: str, shards: int) -> int:
    """A stable spread of jobs over the index's partitions, so no partition is hot."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) % shards


class DynamoJobStore:
    def __init__(self, client: DynamoDBClient, table_name: str, *, shards: int, finished_ttl: timedelta) -> None:
        self._client = client
        self._table = table_name
        self.shards = shards
        self._finished_ttl = finished_ttl

    def create(self, job: Job) -> bool:
        item = self.to_item(job)
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(request_id)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return self._is_stored(item)
        return True

    def get(self, request_id: str) -> Job | None:
        answer = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return self.from_item(item) if item else None

    def save(self, job: Job) -> None:
        item = self.to_item(job)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="version = :previous",
                ExpressionAttributeValues={":previous": {"N": str(job.version - 1)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException as error:
            if not self._is_stored(item):
                raise StaleJob(job.request_id) from error

    def take_sweep(self, shard: int, holder: str, until: datetime, now: datetime) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._sweep_lease(shard, holder, until),
                ConditionExpression="attribute_not_exists(request_id) OR lease_until <= :now OR holder = :me",
                ExpressionAttributeValues={":now": {"N": str(millis(now))}, ":me": {"S": holder}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def end_sweep(self, shard: int, holder: str) -> None:
        # A lease that ran out at once (a put, as the poller may not delete), if still the holder's;
        # one taken over after it ran out is the new holder's.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.put_item(
                TableName=self._table,
                Item=self._sweep_lease(shard, holder, datetime.fromtimestamp(0, UTC)),
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}},
            )

    @staticmethod
    def _sweep_lease(shard: int, holder: str, until: datetime) -> dict[str, Any]:
        # `#` is in no request_id: a lease item is never a job (and has no `state`).
        return {
            "request_id": {"S": f"sweep#{shard}"},
            "holder": {"S": holder},
            "lease_until": {"N": str(millis(until))},
        }

    def own_generation(self, uuid: str, request_id: str) -> bool:
        # `#` is in no request_id: an owner item is never a job.
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "request_id": {"S": f"generation#{uuid}"},
                    "owner": {"S": request_id},
                    "expires_at": {"N": str(int((datetime.now(UTC) + self._finished_ttl).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(request_id) OR #owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": {"S": request_id}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def generation_owner(self, uuid: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": f"generation#{uuid}"}}, ConsistentRead=True
        ).get("Item")
        return item["owner"]["S"] if item else None

    def prompt_holder(self, prompt_key: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": self._prompt_item_key(prompt_key)}}, ConsistentRead=True
        ).get("Item")
        return item["holder"]["S"] if item else None

    def take_prompt(self, prompt_key: str, request_id: str, previous: str | None) -> bool:
        condition = "attribute_not_exists(request_id) OR holder = :me"
        values = {":me": {"S": request_id}}
        if previous is not None:
            condition += " OR holder = :previous"
            values[":previous"] = {"S": previous}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "request_id": {"S": self._prompt_item_key(prompt_key)},
                    "holder": {"S": request_id},
                    "expires_at": {"N": str(int((datetime.now(UTC) + self._finished_ttl).timestamp()))},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def _prompt_item_key(prompt_key: str) -> str:
        # `#` is in no request_id: a prompt item is never a job. Hashed: a key is user text.
        return f"prompt#{hashlib.sha256(prompt_key.encode()).hexdigest()}"

    def scan(self, *, updated_since: datetime | None = None) -> Iterator[Job]:
        """Every job (a whole-table read, for people listing their jobs; the functions never scan)."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            # Only jobs: other items of the table (the credit budget's) have no `state`.
            "FilterExpression": "attribute_exists(#state)",
            "ExpressionAttributeNames": {"#state": "state"},
        }
        if updated_since is not None:
            arguments["FilterExpression"] += " AND updated_at >= :since"
            arguments["ExpressionAttributeValues"] = {":since": {"S": updated_since.isoformat()}}
        for page in self._client.get_paginator("scan").paginate(**arguments):
            yield from (self.from_item(item) for item in page.get("Items", []))

    def _is_stored(self, item: dict[str, Any]) -> bool:
        """Whether the table holds this very version: a write whose answer was lost (and whose
        retry by the SDK then failed its own condition) did happen. Its `revision` is unique to
        each version written, and compared as stored; the whole item could not be (DynamoDB
        stores numbers normalized: 30.0 reads back as 30)."""
        stored = self._client.get_item(
            TableName=self._table, Key={"request_id": item["request_id"]}, ConsistentRead=True
        ).get("Item")
        return stored is not None and stored.get("revision") == item["revision"]

    def due(self, shard: int, now: datetime, limit: int, start: object | None = None) -> DuePage:
        answer = self._client.query(
            TableName=self._table,
            IndexName=OUTSTANDING_INDEX,
            KeyConditionExpression="poll_shard = :shard AND next_check_at <= :now",
            ExpressionAttributeValues={":shard": {"S": str(shard)}, ":now": {"N": str(millis(now))}},
            Limit=limit,
            **({"ExclusiveStartKey": start} if start is not None else {}),  # type: ignore[arg-type]
        )
        return DuePage([self.from_item(item) for item in answer.get("Items", [])], answer.get("LastEvaluatedKey"))

    def next_due(self, shard: int) -> datetime | None:
        answer = self._client.query(
            TableName=self._table,
            IndexName=OUTSTANDING_INDEX,
            KeyConditionExpression="poll_shard = :shard",
            ExpressionAttributeValues={":shard": {"S": str(shard)}},
            ProjectionExpression="next_check_at",
            Limit=1,
        )
        items = answer.get("Items", [])
        return datetime.fromtimestamp(int(items[0]["next_check_at"]["N"]) / 1000, UTC) if items else None

    def to_item(self, job: Job) -> dict[str, Any]:
        """The item a job is stored as."""
        item: dict[str, Any] = {
            "request_id": job.request_id,
            "state": job.state.value,
            "fingerprint": job.fingerprint,
            "version": job.version,
            "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
            "metadata": json.dumps(job.metadata),
            "progress": job.progress,
            "status_checks": job.status_checks,
            "event_published": job.event_published,
            "submitted_event_published": job.submitted_event_published,
            "revision": job.revision,
        }
        optional: dict[str, Any] = {
            # Unset fields left out: each write of a job is billed by the kilobyte.
            "request": job.request.model_dump_json(exclude_none=True) if job.request else None,
            "lease_until": job.lease_until.isoformat() if job.lease_until else None,
            "attempt_started_at": job.attempt_started_at.isoformat() if job.attempt_started_at else None,
            "attempt_reserved": _number(job.attempt_reserved) if job.attempt_reserved else None,
            "provider": job.provider.model_dump_json(exclude_none=True) if job.provider else None,
            "submitted_at": job.submitted_at.isoformat() if job.submitted_at else None,
            "attempt_id": job.attempt_id,
            "progress_at": job.progress_at.isoformat() if job.progress_at else None,
            "completed_at": job.completed_at.isoformat() if job.completed_at else None,
            "placed_at": job.placed_at.isoformat() if job.placed_at else None,
            "reference_failures": job.reference_failures or None,
            "held": job.held,
            "video_url": job.video_url,
            "thumbnail_url": job.thumbnail_url,
            "media_type": job.media_type,
            "final_event": job.final_event.to_json() if job.final_event else None,
            "attempts": _ATTEMPTS.dump_json(list(job.attempts), exclude_none=True).decode() if job.attempts else None,
            "api_key": job.key,  # also the key of the index of each key's requests
        }
        item.update({name: value for name, value in optional.items() if value is not None})
        if job.next_check_at is not None:
            # Both index keys are present only while the job owes work: that keeps the index sparse.
            item["next_check_at"] = millis(job.next_check_at)
            item["poll_shard"] = str(shard_of(job.request_id, self.shards))
        if job.waiting:
            # The line index's keys, only while the job waits (adapters/line.py reads them).
            item["line"] = job.request.priority.value if job.request else "normal"
            item["line_order"] = line_order(job.created_at, job.request_id)
        if job.state.final:
            item["expires_at"] = int((job.updated_at + self._finished_ttl).timestamp())
        return {name: _serializer.serialize(value) for name, value in item.items()}

    @staticmethod
    def from_item(raw: dict[str, Any]) -> Job:
        item = {name: _deserializer.deserialize(value) for name, value in raw.items()}

        def moment(name: str) -> datetime | None:
            return datetime.fromisoformat(item[name]) if name in item else None

        return Job(
            request_id=item["request_id"],
            state=JobState(item["state"]),
            fingerprint=item["fingerprint"],
            version=int(item["version"]),
            created_at=datetime.fromisoformat(item["created_at"]),
            updated_at=datetime.fromisoformat(item["updated_at"]),
            metadata=json.loads(item["metadata"]),
            progress=int(item["progress"]),
            status_checks=int(item["status_checks"]),
            event_published=bool(item["event_published"]),
            # A job stored before video.submitted existed owes none.
            submitted_event_published=bool(item.get("submitted_event_published", True)),
            revision=item["revision"],
            request=VideoRequest.model_validate_json(item["request"]) if "request" in item else None,
            lease_until=moment("lease_until"),
            attempt_started_at=moment("attempt_started_at"),
            attempt_reserved=float(item.get("attempt_reserved", 0)),
            provider=ProviderSummary.model_validate_json(item["provider"]) if "provider" in item else None,
            submitted_at=moment("submitted_at"),
            attempt_id=item.get("attempt_id"),
            progress_at=moment("progress_at"),
            completed_at=moment("completed_at"),
            placed_at=moment("placed_at"),
            reference_failures=int(item.get("reference_failures", 0)),
            waiting="line" in item,
            held=item.get("held"),
            video_url=item.get("video_url"),
            thumbnail_url=item.get("thumbnail_url"),
            media_type=item.get("media_type"),
            final_event=VideoEvent.model_validate_json(item["final_event"]) if "final_event" in item else None,
            attempts=tuple(_ATTEMPTS.validate_json(item["attempts"])) if "attempts" in item else (),
            key=item.get("api_key"),
            next_check_at=(
                datetime.fromtimestamp(int(item["next_check_at"]) / 1000, UTC) if "next_check_at" in item else None
            ),
        )


_ATTEMPTS: TypeAdapter[list[AttemptSummary]] = TypeAdapter(list[AttemptSummary], config=ConfigDict(defer_build=True))


def _number(value: float) -> Decimal:
    return Decimal(str(value))
