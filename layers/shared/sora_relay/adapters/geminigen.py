"""GeminiGen's Sora API over httpx: every answer mapped to an outcome the domain knows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pydantic import ValidationError

from sora_relay.ports import ReferenceFile
from sora_relay.provider import Accepted, GenerationRecord, ProviderUnavailable, Rejected, RetryLater, SubmitOutcome
from sora_relay.request import VideoRequest

SUBMIT_PATH = "/uapi/v1/video-gen/sora"
STATUS_PATH = "/uapi/v1/history/{uuid}"
_SNIPPET = 300
# Answers that say "not now" rather than "never": a later try of the same request may pass.
_RETRYABLE = {408, 409, 425, 429}
# A bad or revoked key is the operator's to fix: the requests wait for it instead of failing.
_KEY_REFUSED = {401, 403}


def make_http_client(*, timeout: float = 30.0, connect_retries: int = 2) -> httpx.Client:
    """The provider's client; httpx retries connection failures itself (safe: nothing was sent)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=5.0),
        transport=httpx.HTTPTransport(retries=connect_retries),
        headers={"accept": "application/json", "user-agent": "sora-relay"},
    )


class GeminiGenClient:
    def __init__(self, http: httpx.Client, base_url: str, api_key: Callable[[], str]) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key

    def submit(self, request: VideoRequest, files: Sequence[ReferenceFile]) -> SubmitOutcome:
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
        try:
            response = self._http.post(self._base_url + SUBMIT_PATH, files=parts, headers=self._auth())
        except httpx.TimeoutException:
            return RetryLater("the provider did not answer in time")
        except httpx.TransportError as error:
            return RetryLater(f"could not reach the provider ({type(error).__name__})")
        code = response.status_code
        if response.is_success:
            try:
                return Accepted(GenerationRecord.model_validate_json(response.content))
            except ValidationError:
                # It may have been accepted (and paid): never send it again.
                return Rejected(code, "the provider's answer could not be read; not resubmitted, as it may be paid")
        if code in _RETRYABLE or code >= 500:
            return RetryLater(f"the provider answered HTTP {code}", _retry_after(response))
        if code in _KEY_REFUSED:
            return RetryLater(f"the provider refused the API key (HTTP {code})")
        return Rejected(code, _reason(response))

    def status(self, uuid: str) -> GenerationRecord:
        try:
            response = self._http.get(self._base_url + STATUS_PATH.format(uuid=uuid), headers=self._auth())
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"status call failed ({type(error).__name__})") from error
        if not response.is_success:
            raise ProviderUnavailable(f"status call answered HTTP {response.status_code}", _retry_after(response))
        try:
            return GenerationRecord.model_validate_json(response.content)
        except ValidationError as error:
            raise ProviderUnavailable("status answer could not be read") from error

    def _auth(self) -> dict[str, str]:
        return {"x-api-key": self._api_key()}


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
    except ValueError:
        return response.text[:_SNIPPET] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error_message", "error"):
            if body.get(key):
                return str(body[key])[:_SNIPPET]
    return str(body)[:_SNIPPET]
