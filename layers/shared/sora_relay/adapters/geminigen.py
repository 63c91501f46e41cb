"""GeminiGen's video API over httpx (every family's endpoint, and extend): every answer mapped to
an outcome the domain knows, read as the provider really writes it (docs/provider.md)."""

from __future__ import annotations

import asyncio
import itertools
import math
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

SUBMIT_PATH = "/uapi/v1/video-gen/{family}"
EXTEND_PATH = "/uapi/v1/video-extend/{family}"
STATUS_PATH = "/uapi/v1/history/{uuid}"
HISTORY_PATH = "/uapi/v1/histories"
# The page size asked for; the provider may give fewer (its largest is not documented).
HISTORY_PAGE_SIZE = 100
# How far the history is read to find one attempt's generation: pages beyond this many mean
# thousands of generations to look through, and the search waits for a quieter time.
HISTORY_PAGES = 50
_SNIPPET = 300
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

    def submit(
        self, request: VideoRequest, files: Sequence[ReferenceFile], timeout: float, extends: str | None = None
    ) -> SubmitOutcome:
        """Submit to the request's family's endpoint (or its extend endpoint, continuing the
        generation `extends`), the whole call ended after `timeout` seconds whatever the server
        does. Fields and reference parts carry the provider's own names."""
        fields: dict[str, str] = {"prompt": request.prompt}
        if extends is None:
            path = SUBMIT_PATH.format(family=request.family)
            fields["model"] = request.model
        else:
            path = EXTEND_PATH.format(family=request.family)
            fields["ref_history"] = extends
        fields |= {name: str(value) for name, value in request.settings().items()}
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

    def recent_generations(self, since: datetime) -> list[GenerationRecord]:
        """The account's generations created at or after `since` (and any whose time cannot be
        read). Neither the history's order nor its largest page is documented: the first page
        tells both (its rows' own times, its length), and the rest is read until every row
        since `since` has been seen for sure: an empty page, `total` rows read, or, in an order
        the rows themselves show, a row from before `since`."""
        first = self._history_page(1)
        if not first.records:
            return []
        seen = {record.uuid: record for record in first.records}
        order = _order(first.records)
        pages = math.ceil(first.total / len(first.records)) if first.total is not None else None
        last: list[GenerationRecord] | None = first.records  # the page read last, when in order
        numbers = range(2, HISTORY_PAGES + 1)
        if order == "oldest" and pages is not None and pages > 1:
            numbers, last = range(pages, 1, -1), None  # the newest rows are on the last pages
        for number in itertools.islice(numbers, HISTORY_PAGES - 1):
            if _seen_all_since(last, order, since, len(seen), first.total):
                break
            records = self._history_page(number).records
            if not records:
                break
            if order is not None and _order([*(last or []), *records] if order == "newest" else records) != order:
                order = None  # the pages do not keep the order the first showed: read them all
            seen.update((record.uuid, record) for record in records)
            last = records
        else:
            if not _seen_all_since(last, order, since, len(seen), first.total):
                raise ProviderUnavailable(f"the history holds more than {HISTORY_PAGES} pages to read since {since}")
        return [r for r in seen.values() if r.created_at is None or r.created_at >= since]

    def _history_page(self, number: int) -> HistoryPage:
        params: dict[str, str | int] = {"filter_by": "all", "items_per_page": HISTORY_PAGE_SIZE, "page": number}
        content = self._get(HISTORY_PATH, params, "history list")
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

    def _get(self, path: str, params: dict[str, str | int], what: str) -> bytes:
        try:
            response = self._http.get(self._base_url + path, params=params, headers=self._auth())
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"{what} failed ({type(error).__name__})") from error
        if not response.is_success:
            raise ProviderUnavailable(
                f"{what} answered HTTP {response.status_code}",
                _retry_after(response),
                throttled=response.status_code == 429,
            )
        return response.content

    def _auth(self) -> dict[str, str]:
        return {"x-api-key": self._api_key()}


def _order(records: list[GenerationRecord]) -> str | None:
    """Which rows come first, "newest" or "oldest", as their own times show; None when they cannot tell."""
    times = [record.created_at for record in records]
    if len(times) < 2 or None in times:
        return None
    pairs = list(itertools.pairwise(times))
    if all(a == b for a, b in pairs):
        return None  # rows of one moment show no order
    if all(a >= b for a, b in pairs):  # type: ignore[operator]
        return "newest"
    if all(a <= b for a, b in pairs):  # type: ignore[operator]
        return "oldest"
    return None


def _seen_all_since(
    last: list[GenerationRecord] | None, order: str | None, since: datetime, seen: int, total: int | None
) -> bool:
    """Whether every row since `since` has been read: all `total` of them, or, read newest page
    first in an order the rows show, a page whose oldest row is from before `since`."""
    if total is not None and seen >= total:
        return True
    if order is None or not last:
        return False
    oldest = last[-1] if order == "newest" else last[0]
    return oldest.created_at is not None and oldest.created_at < since


def _submit_outcome(response: httpx.Response) -> SubmitOutcome:
    code = response.status_code
    if response.is_success:
        try:
            return Accepted(GenerationRecord.model_validate_json(response.content))
        except ValidationError:
            return MaybeTaken(f"the provider's answer (HTTP {code}) could not be read")
    said = _provider_error(response)
    if code in _MAYBE_TAKEN or code >= 500:
        return MaybeTaken(f"the provider answered HTTP {code}: {said}", _retry_after(response))
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
