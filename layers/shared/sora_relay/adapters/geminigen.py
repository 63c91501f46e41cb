"""GeminiGen's Sora API over httpx: every answer mapped to an outcome the domain knows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import ValidationError

from sora_relay.domain.ports import ReferenceFile
from sora_relay.domain.provider import (
    Accepted,
    GenerationRecord,
    HistoryPage,
    MaybeTaken,
    ProviderUnavailable,
    Rejected,
    RetryLater,
    SubmitOutcome,
)
from sora_relay.domain.request import VideoRequest

SUBMIT_PATH = "/uapi/v1/video-gen/sora"
STATUS_PATH = "/uapi/v1/history/{uuid}"
HISTORY_PATH = "/uapi/v1/histories"
HISTORY_PAGE_SIZE = 100
# How far back the history is read to find one attempt's generation: pages beyond this many
# mean thousands of generations since the attempt, and the search waits for a quieter time.
HISTORY_PAGES = 20
_SNIPPET = 300
# Refusals that say "not now" and that no provider sends after acting: the request was not taken.
_NOT_TAKEN = {408, 425, 429}
# Answers after which the provider may have acted: a gateway's 5xx or a conflict.
_MAYBE_TAKEN = {409}
# A bad or revoked key is the operator's to fix: the requests wait for it instead of failing.
_KEY_REFUSED = {401, 403}
_HEADERS = {"accept": "application/json", "user-agent": "sora-relay"}


def make_http_client(*, timeout: float = 30.0, connect_retries: int = 2) -> httpx.Client:
    """The provider's client for reads; httpx retries connection failures itself (safe: nothing was sent)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=5.0),
        transport=httpx.HTTPTransport(retries=connect_retries),
        headers=_HEADERS,
    )


def make_submit_client(*, connect_retries: int = 2) -> httpx.AsyncClient:
    """A client for one submission. Async because only a cancelled task ends an httpx call at
    a deadline whatever the server does (httpx's own timeouts apply to each read and write,
    so a server that trickles its answer could hold a call for ever); the per-phase timeouts
    are the whole call's, and the call's deadline bounds them all."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=5.0),
        transport=httpx.AsyncHTTPTransport(retries=connect_retries),
        headers=_HEADERS,
    )


class GeminiGenClient:
    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        api_key: Callable[[], str],
        *,
        submit_client: Callable[[], httpx.AsyncClient] = make_submit_client,
    ) -> None:
        self._http = http
        self._submit_client = submit_client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key

    def submit(self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float) -> SubmitOutcome:
        """Submit, the whole call ended after `timeout` seconds whatever the server does."""
        fields = {
            "prompt": request.prompt,
            "model": request.model.value,
            "duration": str(request.duration),
            "resolution": request.resolution.value,
            "aspect_ratio": request.aspect_ratio.value,
        }
        # A (None, value) part is a plain form field: the request is multipart even without files.
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            (name, (None, value, None)) for name, value in fields.items()
        ]
        parts += [("files", (file.filename, file.content, file.content_type)) for file in files]
        return asyncio.run(self._post(parts, timeout))

    async def _post(self, parts: list[Any], timeout: float) -> SubmitOutcome:
        sent = False

        async def trace(event: str, _: dict[str, Any]) -> None:
            nonlocal sent
            # From the first byte of the request on, the provider may act on it.
            sent = sent or "send_request_headers" in event

        try:
            async with self._submit_client() as http, asyncio.timeout(timeout):
                response = await http.post(
                    self._base_url + SUBMIT_PATH, files=parts, headers=self._auth(), extensions={"trace": trace}
                )
        except (TimeoutError, httpx.TransportError) as error:
            what = "no answer in time" if isinstance(error, TimeoutError) else type(error).__name__
            if sent:
                return MaybeTaken(f"the submission was sent but its answer was lost ({what})")
            return RetryLater(f"could not reach the provider ({what})")
        return _submit_outcome(response)

    def recent_generations(self, since: datetime) -> list[GenerationRecord]:
        """The account's generations created at or after `since` (and any whose time cannot be
        read), newest first: read page by page until one reaches back past `since`."""
        found: list[GenerationRecord] = []
        for page in range(1, HISTORY_PAGES + 1):
            params: dict[str, str | int] = {"filter_by": "video", "items_per_page": HISTORY_PAGE_SIZE, "page": page}
            content = self._get(HISTORY_PATH, params, "history list")
            try:
                records = HistoryPage.model_validate_json(content).records
            except ValidationError as error:
                # One record not understood could be the one sought: the search cannot conclude.
                raise ProviderUnavailable("history list could not be read") from error
            found += [r for r in records if r.created_at is None or r.created_at >= since]
            reached_back = any(r.created_at is not None and r.created_at < since for r in records)
            if reached_back or len(records) < HISTORY_PAGE_SIZE:
                return found
        raise ProviderUnavailable(f"the history holds more than {HISTORY_PAGES} pages since {since.isoformat()}")

    def status(self, uuid: str) -> GenerationRecord:
        content = self._get(STATUS_PATH.format(uuid=uuid), {}, "status call")
        try:
            return GenerationRecord.model_validate_json(content)
        except ValidationError as error:
            raise ProviderUnavailable("status answer could not be read") from error

    def _get(self, path: str, params: dict[str, str | int], what: str) -> bytes:
        try:
            response = self._http.get(self._base_url + path, params=params, headers=self._auth())
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"{what} failed ({type(error).__name__})") from error
        if not response.is_success:
            raise ProviderUnavailable(f"{what} answered HTTP {response.status_code}", _retry_after(response))
        return response.content

    def _auth(self) -> dict[str, str]:
        return {"x-api-key": self._api_key()}


def _submit_outcome(response: httpx.Response) -> SubmitOutcome:
    code = response.status_code
    if response.is_success:
        try:
            return Accepted(GenerationRecord.model_validate_json(response.content))
        except ValidationError:
            return MaybeTaken(f"the provider's answer (HTTP {code}) could not be read")
    if code in _MAYBE_TAKEN or code >= 500:
        return MaybeTaken(f"the provider answered HTTP {code}", _retry_after(response))
    if code in _NOT_TAKEN:
        return RetryLater(f"the provider answered HTTP {code}", _retry_after(response))
    if code in _KEY_REFUSED:
        return RetryLater(f"the provider refused the API key (HTTP {code})")
    return Rejected(code, _reason(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.text[:_SNIPPET] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error_message", "error"):
            if body.get(key):
                return str(body[key])[:_SNIPPET]
    return str(body)[:_SNIPPET]
