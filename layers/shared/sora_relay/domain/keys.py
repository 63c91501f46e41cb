"""The HTTP API's keys (docs/api.md, "Keys"): each a name and a secret that is shown once; only
the secret's hash is stored (with the key's daily credits, where the operator sets them). A key
of 256 random bits needs no slow hash: nobody can guess one from its SHA-256, and a fast hash
keeps each call's look-up one read."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

KEY_PREFIX = "sr-"
KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    name: KeyName
    created_at: datetime
    revoked_at: datetime | None = None
    # The credits its requests may be priced at in a UTC day, within the stack's own budget
    # (None: only the stack's).
    daily_credits: float | None = Field(default=None, ge=0)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore(Protocol):
    def by_hash(self, hashed: str) -> ApiKey | None:
        """The key whose secret hashes to `hashed`, revoked or not; None when there is none."""

    def create(self, key: ApiKey, hashed: str) -> bool:
        """Store a new key; False when its name is taken (a name is never used twice)."""

    def revoke(self, name: str, now: datetime) -> bool:
        """Revoke the key named `name`; False when there is none."""

    def all(self) -> list[ApiKey]: ...

    def take_call(self, name: str, now: datetime, per_minute: int) -> bool:
        """Count one call of the key in `now`'s minute; False, counting nothing, when it has
        made `per_minute` calls in it already."""

    def spend(self, name: str, request_id: str, day: date, amount: float, limit: float) -> bool:
        """Count `amount` credits of the key's `day` for `request_id`, once however often it is
        asked (a repeat, a retry whose answer was lost); False, counting nothing, when the day
        would pass `limit`."""
