"""GeminiGen's video API over httpx (every family's endpoint, and extend): every answer mapped to
an outcome the domain knows, read as the provider really writes it (docs/provider.md)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import httpx
from pydantic import ValidationError

from sora_relay.adapters.history import HistorySearch
from sora_relay.domain.catalogue import Catalogue
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

SUBMIT_PATH = "/uapi/v1/video-gen/{family}"
EXTEND_PATH = "/uapi/v1/video-extend/{family}"
STATUS_PATH = "/uapi/v1/history/{uuid}"
HISTORY_PATH = "/uapi/v1/histories"
# The page size asked for; the provider may give fewer (its largest is not documented).
HISTORY_PAGE_SIZE = 100
_SNIPPET = 300
# The longest any one API read may take, start to end (a status call's, when not told).
_LONGEST_READ = 60.0
# Refusals that say "not now" and that no provider sends after acting: the request was not taken.
_NOT_TAKEN = {408, 425, 429}
# Answers after which the provider may have acted: a gateway's 5xx or a conflict.
_MAYBE_TAKEN = {409}
# A bad or revoked key is the operator's to fix: the requests wait for it instead of failing.
_KEY_REFUSED = {401, 403}
# Error codes that refuse a submission for now, without taking it: the plan's limit on running
# generations (`MAX_PROCESSING_<KIND>_EXCEEDED`), or credit locked by running generations.
_CAPACITY_CODES = ("MAX_PROCESSING_", "NOT_ENOUGH_AND_LOCK_CREDIT")
# The account cannot pay: an operator must top it up; the requests wait for it.
_OUT_OF_CREDIT = "NOT_ENOUGH_CREDIT"
_HEADERS = {"accept": "application/json", "user-agent": "sora-relay"}


def make_http_client(*, timeout: float = 30.0, connect_retries: int = 2) -> httpx.Client:
    """The provider's client for reads; httpx retries connection failures itself (safe: nothing was sent)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=5.0),
        transport=httpx.HTTPTransport(retries=connect_retries),
        headers=_HEADERS,
    )


@cache
def _tls() -> ssl.SSLContext:
    # Made once per container and shared (a context is safe to share between connections):
    # loading the CA bundle costs more than a submission's own work.
    return httpx.create_ssl_context()


def make_submit_client(*, connect_retries: int = 2) -> httpx.AsyncClient:
    """A client for one submission. Async because only a cancelled task ends an httpx call at
    a deadline whatever the server does (httpx's own timeouts apply to each read and write,
    so a server that trickles its answer could hold a call for ever); the per-phase timeouts
    are the whole call's, and the call's deadline bounds them all."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=5.0),
        transport=httpx.AsyncHTTPTransport(verify=_tls(), retries=connect_retries),
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

    def submit(
        self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float, extends: str | None = None
    ) -> SubmitOutcome:
        """Submit to the request's family's endpoint (or its extend endpoint, continuing the
        generation `extends`), the whole call ended after `timeout` seconds whatever the server
        does. Fields and reference parts carry the provider's own names."""
        fields: dict[str, str] = {"prompt": request.prompt}
        if extends is None:
            path = SUBMIT_PATH.format(family=request.family)
            if Catalogue.bundled().families[request.family].sends_model:
                fields["model"] = request.model
        else:
            path = EXTEND_PATH.format(family=request.family)
            fields["ref_history"] = extends
        fields |= {name: _form_value(value) for name, value in request.settings().items()}
        # A (None, value) part is a plain form field: the request is multipart even without files.
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            (name, (None, value, None)) for name, value in fields.items()
        ]
        parts += [(file.field, (file.filename, file.content, file.content_type)) for file in files]
        return asyncio.run(self._post(path, parts, timeout))

    async def _post(self, path: str, parts: list[Any], timeout: float) -> SubmitOutcome:
        sent = False

        async def trace(event: str, _: dict[str, Any]) -> None:
            nonlocal sent
            # From the first byte of the request on, the provider may act on it.
            sent = sent or "send_request_headers" in event

        try:
            async with self._submit_client() as http, asyncio.timeout(timeout):
                response = await http.post(
                    self._base_url + path, files=parts, headers=self._auth(), extensions={"trace": trace}
                )
        except (TimeoutError, httpx.TransportError) as error:
            what = "no answer in time" if isinstance(error, TimeoutError) else type(error).__name__
            if sent:
                return MaybeTaken(f"the submission was sent but its answer was lost ({what})")
            return RetryLater(f"could not reach the provider ({what})")
        return _submit_outcome(response)

    def recent_generations(self, since: datetime, within: float) -> list[GenerationRecord]:
        """The account's generations created at or after `since` (and any whose time cannot be
        read), all of them, read within `within` seconds (adapters/history.py)."""
        return HistorySearch(self._history_page, since, time.monotonic() + within).run()

    def _history_page(self, number: int, within: float) -> HistoryPage:
        params: dict[str, str | int] = {"filter_by": "all", "items_per_page": HISTORY_PAGE_SIZE, "page": number}
        content = self._get(HISTORY_PATH, params, "history list", within)
        try:
            return HistoryPage.model_validate_json(content)
        except ValidationError as error:
            # One record not understood could be the one sought: the search cannot conclude.
            raise ProviderUnavailable("history list could not be read") from error

    def status(self, uuid: str) -> GenerationRecord:
        content = self._get(STATUS_PATH.format(uuid=uuid), {}, "status call")
        try:
            return GenerationRecord.model_validate_json(content)
        except ValidationError as error:
            raise ProviderUnavailable("status answer could not be read") from error

    def _get(self, path: str, params: dict[str, str | int], what: str, within: float | None = None) -> bytes:
        """An API read's body; with `within`, the whole read (a server trickling its answer too)
        ends within that many seconds. httpx's timeouts bound each phase, not the whole call:
        the body is read as it arrives, and the deadline checked as each part does."""
        deadline = time.monotonic() + (within if within is not None else _LONGEST_READ)
        timeout = min(deadline - time.monotonic(), self._http.timeout.read or _LONGEST_READ)
        try:
            with self._http.stream(
                "GET", self._base_url + path, params=params, headers=self._auth(), timeout=timeout
            ) as response:
                if not response.is_success:
                    raise ProviderUnavailable(
                        f"{what} answered HTTP {response.status_code}",
                        _retry_after(response),
                        throttled=response.status_code == 429,
                    )
                body = bytearray()
                for part in response.iter_bytes():
                    body += part
                    if time.monotonic() > deadline:
                        raise ProviderUnavailable(f"{what} did not arrive in time")
                return bytes(body)
        except httpx.TimeoutException as error:
            raise ProviderUnavailable(f"{what} did not arrive in time") from error
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"{what} failed ({type(error).__name__})") from error

    def _auth(self) -> dict[str, str]:
        return {"x-api-key": self._api_key()}


def _form_value(value: bool | int | str) -> str:
    # A flag as the provider's FastAPI form reads one (`skip_audio=true`), never Python's `True`.
    return str(value).lower() if isinstance(value, bool) else str(value)


def _submit_outcome(response: httpx.Response) -> SubmitOutcome:
    code = response.status_code
    if response.is_success:
        try:
            return Accepted(GenerationRecord.model_validate_json(response.content))
        except ValidationError:
            return MaybeTaken(f"the provider's answer (HTTP {code}) could not be read")
    said = _provider_error(response)
    if code in _MAYBE_TAKEN or code >= 500:
        return MaybeTaken(
            f"the provider answered HTTP {code}: {said}", _retry_after(response), server_error=code >= 500
        )
    if code in _NOT_TAKEN or said.startswith(_CAPACITY_CODES):
        return RetryLater(f"the provider answered HTTP {code}: {said}", _retry_after(response))
    if code in _KEY_REFUSED or said.startswith(_OUT_OF_CREDIT):
        return RetryLater(f"the provider refused the account (HTTP {code}): {said}", account_refused=True)
    return Rejected(code, said)


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


def _provider_error(response: httpx.Response) -> str:
    """The provider's own words: `CODE: message` from `{"detail": {"error_code", "error_message"}}`
    (some say `message`), FastAPI's 422 list as `field: msg` items, or the text it sent."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.text[:_SNIPPET] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        code = detail.get("error_code") or detail.get("code")
        message = detail.get("error_message") or detail.get("message") or detail.get("msg")
        said = ": ".join(str(part) for part in (code, message) if part)
    elif isinstance(detail, list):
        said = "; ".join(_validation_item(item) for item in detail)
    else:
        said = str(detail)
    return said[:_SNIPPET] or response.reason_phrase


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", ""))
