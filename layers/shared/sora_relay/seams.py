"""What a local run or a fault drill may replace in the functions' parts (`wiring.reset`): the
clock, the pauses, and hooks told of every AWS call and HTTP request. Lambda always gets the
defaults: the real clock, no hooks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import boto3

from sora_relay.domain.ports import Clock


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Seams:
    """What a local run or a fault drill may replace; Lambda always gets the defaults."""

    clock: Clock = utc_now
    sleep: Callable[[float], None] = time.sleep
    on_outbound_call: Callable[[str], None] | None = None
    on_aws_request: Callable[[str, dict[str, Any]], None] | None = None
    on_aws_answer: Callable[[str, dict[str, Any]], None] | None = None
    # (key id, secret, token) of the function's role where one process runs several functions.
    aws_credentials: tuple[str, str, str] | None = None


seams = Seams()


@cache  # one per identity: a local stack switching between functions keeps each one's
def session_as(credentials: tuple[str, str, str] | None) -> boto3.Session:
    key_id, secret, token = credentials or (None, None, None)
    session = boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token)
    observe = seams.on_outbound_call
    if observe is not None:
        session.events.register("before-call", lambda event_name, **_: observe(event_name.removeprefix("before-call.")))
    asked = seams.on_aws_request
    if asked is not None:
        session.events.register(
            "provide-client-params",
            lambda event_name, params, **_: asked(event_name.removeprefix("provide-client-params."), params),
        )
    answered = seams.on_aws_answer
    if answered is not None:
        session.events.register(
            "after-call", lambda event_name, parsed, **_: answered(event_name.removeprefix("after-call."), parsed)
        )
    return session


if TYPE_CHECKING:  # httpx is loaded by the functions that make a client (the API makes none)
    import httpx

    HttpClient = TypeVar("HttpClient", httpx.Client, httpx.AsyncClient)


def observed(client: HttpClient) -> HttpClient:
    import httpx

    observe = seams.on_outbound_call
    if observe is None:
        return client

    def tell(request: httpx.Request) -> None:
        observe(f"http.{request.method} {request.url.path}")

    async def tell_async(request: httpx.Request) -> None:
        tell(request)

    # An async client awaits its hooks.
    client.event_hooks["request"].append(tell_async if isinstance(client, httpx.AsyncClient) else tell)
    return client
