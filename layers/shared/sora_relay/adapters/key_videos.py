"""Each API key's requests, newest or oldest first: an index of the jobs table on the key's name
and the arrival (sparse: only requests made over the API carry `api_key`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.domain.jobs import Job
from sora_relay.domain.videos import Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_INDEX = "by-key"


class DynamoKeyVideos:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def page(self, key: str, *, limit: int, after: Job | None, newest_first: bool) -> Page:
        start = None
        if after is not None:
            start = {
                "request_id": {"S": after.request_id},
                "api_key": {"S": key},
                "created_at": {"S": after.created_at.isoformat()},
            }
        answer = self._client.query(
            TableName=self._table,
            IndexName=KEY_INDEX,
            KeyConditionExpression="api_key = :key",
            ExpressionAttributeValues={":key": {"S": key}},
            ScanIndexForward=not newest_first,
            Limit=limit + 1,  # one more than asked: whether there are more
            **({"ExclusiveStartKey": start} if start else {}),  # type: ignore[arg-type]
        )
        jobs = [DynamoJobStore.from_item(item) for item in answer.get("Items", [])]
        return Page(jobs[:limit], has_more=len(jobs) > limit)
