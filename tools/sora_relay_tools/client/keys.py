"""The HTTP API's keys, as an operator makes and revokes them (`sora-relay keys`)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from sora_relay.domain.keys import ApiKey, KeyStore, key_hash, new_key
from sora_relay_tools.client.errors import RelayError


def create_key(keys: KeyStore, name: str, daily_credits: float | None = None) -> str:
    """A new key named `name` (with its own `daily_credits`, if given); its secret, which is
    stored only as a hash, is returned once."""
    try:
        key = ApiKey(name=name, created_at=datetime.now(UTC), daily_credits=daily_credits)
    except ValidationError:
        raise RelayError(
            f"a key's name is 1-64 of A-Z a-z 0-9 . _ - (not {name!r}), and its daily credits at least 0"
        ) from None
    secret = new_key()
    if not keys.create(key, key_hash(secret)):
        raise RelayError(f"there is a key named {name!r} already (a name is never used twice)")
    return secret
