"""Plain fakes of the HTTP API's ports: the keys' table, each key's requests, the bucket."""

from dataclasses import dataclass, field
from datetime import date, datetime

from sora_relay.domain.jobs import Job
from sora_relay.domain.keys import ApiKey
from sora_relay.domain.videos import Page


@dataclass
class MemoryKeys:
    keys: dict[str, tuple[ApiKey, str]] = field(default_factory=dict)  # name: the key, its hash
    calls: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, minute): calls
    spent: dict[tuple[str, date], float] = field(default_factory=dict)  # (name, day): credits
    counted: set[tuple[str, str]] = field(default_factory=set)  # (name, request_id)

    def by_hash(self, hashed: str) -> ApiKey | None:
        return next((key for key, stored in self.keys.values() if stored == hashed), None)

    def create(self, key: ApiKey, hashed: str) -> bool:
        if key.name in self.keys:
            return False
        self.keys[key.name] = (key, hashed)
        return True

    def revoke(self, name: str, now: datetime) -> bool:
        if name not in self.keys:
            return False
        key, hashed = self.keys[name]
        self.keys[name] = (key.model_copy(update={"revoked_at": key.revoked_at or now}), hashed)
        return True

    def all(self) -> list[ApiKey]:
        return sorted((key for key, _ in self.keys.values()), key=lambda key: key.name)

    def spend(self, name: str, request_id: str, day: date, amount: float, limit: float) -> bool:
        if (name, request_id) in self.counted:
            return True
        if self.spent.get((name, day), 0) + amount > limit:
            return False
        self.counted.add((name, request_id))
        self.spent[(name, day)] = self.spent.get((name, day), 0) + amount
        return True

    def take_call(self, name: str, now: datetime, per_minute: int) -> bool:
        minute = (name, now.strftime("%Y-%m-%dT%H:%M"))
        if self.calls.get(minute, 0) >= per_minute:
            return False
        self.calls[minute] = self.calls.get(minute, 0) + 1
        return True


@dataclass
class MemoryKeyVideos:
    jobs: dict[str, Job]  # the job store's

    def page(self, key: str, *, limit: int, after: Job | None, newest_first: bool) -> Page:
        owned = sorted(
            (job for job in self.jobs.values() if job.key == key),
            key=lambda job: (job.created_at, job.request_id),
            reverse=newest_first,
        )
        if after is not None:
            owned = owned[[job.request_id for job in owned].index(after.request_id) + 1 :]
        return Page(owned[:limit], has_more=len(owned) > limit)


@dataclass
class FakeObjects:
    inputs: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # uri: its bytes, content type
    removed: list[tuple[str, str]] = field(default_factory=list)

    def put_input(self, uri: str, data: bytes, content_type: str) -> None:
        self.inputs[uri] = (data, content_type)

    def download_url(self, bucket: str, key: str) -> str:
        return f"https://{bucket}.s3.example/{key}?signed"

    def remove(self, bucket: str, keys: list[str]) -> None:
        self.removed += [(bucket, key) for key in keys]
