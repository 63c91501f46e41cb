"""The HTTP API's calls (docs/api.md): each request made with a key is that key's, and goes
through the line as a message on the request queue does.

A request is claimed here (its job stored, its own key's) and then put on the request queue,
where the submitter takes the claim over as it takes over any claim whose holder is gone. Should
the message never be sent (this invocation dies, SQS refuses), the claim is stale at
`Policy.stale_claim_check` and a sweep puts it on the queue: the request is never lost, and it
is answered `queued` at once.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sora_relay.domain.families import EarlierRequests, RequestRules, parse_request
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.keys import ApiKey, KeyStore, key_hash
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import Clock, JobStore, Metrics, RequestQueue
from sora_relay.domain.request import REQUEST_ID_PATTERN, InvalidRequest, VideoRequest
from sora_relay.domain.videos import (
    ApiError,
    Deleted,
    KeyVideos,
    Objects,
    Upload,
    Video,
    VideoList,
    not_found,
    problem_param,
    request_message,
    video_of,
)
from sora_relay.observability import logger
from sora_relay.services.budget import CreditBudget
from sora_relay.services.cancel import Canceled, CancelService

MAX_PAGE = 100
_VARIANTS = ("video", "thumbnail")


@dataclass(frozen=True)
class VideoApi:
    store: JobStore
    keys: KeyStore
    listing: KeyVideos
    objects: Objects
    request_queue: RequestQueue
    canceler: CancelService
    budget: CreditBudget  # prices a request for a key's daily credits
    rules: RequestRules
    policy: Policy
    clock: Clock
    metrics: Metrics
    input_location: str  # s3://bucket/prefix/ where uploaded references go
    calls_per_minute: int

    def authenticate(self, authorization: str | None) -> ApiKey:
        """The key a call is made with, its call counted; 401 without a valid key, 429 past its
        calls per minute."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "Missing bearer authentication in header", code="invalid_api_key")
        key = self.keys.by_hash(key_hash(secret.strip()))
        if key is None or not key.active:
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        now = self.clock()
        if not self.keys.take_call(key.name, now, self.calls_per_minute):
            self.metrics.count("ApiCallsRefused")
            message = f"Rate limit reached: {self.calls_per_minute} calls per minute"
            raise ApiError(429, message, code="rate_limit_exceeded", retry_after=60 - now.second)
        return key

    def create(
        self, key: ApiKey, body: dict[str, Any], uploads: list[Upload], idempotency_key: str | None = None
    ) -> Video:
        """A new request (or, with an Idempotency-Key already used with this body, the same one)."""
        request_id = idempotency_key or f"video_{uuid.uuid4().hex}"
        if not _is_request_id(request_id):
            raise ApiError(400, "Idempotency-Key must be 1-128 of A-Z a-z 0-9 . _ : -", param="Idempotency-Key")
        message = request_message(body, self.rules.catalogue, self.rules.default_model)
        inputs = self._input_uris(request_id, message, uploads)
        parsed = parse_request(
            json.dumps({**message, "request_id": request_id}), request_id, self.rules, self._earlier(key)
        )
        if isinstance(parsed, InvalidRequest):
            raise ApiError(400, parsed.message, param=problem_param(parsed.message, body), code="invalid_request")
        self._count_credits(key, request_id, parsed.request)
        for uri, upload in zip(inputs, uploads, strict=True):
            self.objects.put_input(uri, upload.data, upload.content_type)
        return self._claim(key, request_id, parsed.request)

    def _count_credits(self, key: ApiKey, request_id: str, request: VideoRequest) -> None:
        """A key with daily credits: the request, priced as the stack's budget prices it, is
        counted against the key's day before it is claimed (once per request_id), or refused."""
        if key.daily_credits is None:
            return
        now = self.clock()
        price = self.budget.price(request)
        if not self.keys.spend(key.name, request_id, now.astimezone(UTC).date(), price, key.daily_credits):
            self.metrics.count("ApiRequestsOverKeyCredits")
            message = f"this key's daily credits ({key.daily_credits:g}) have no room for a request priced {price:g}"
            raise ApiError(429, message, code="insufficient_quota", retry_after=_seconds_to_midnight(now))

    def extend(self, key: ApiKey, body: dict[str, Any], idempotency_key: str | None = None) -> Video:
        """OpenAI's extension: `video.id` is the earlier request, `seconds` the extension's length
        where its family's extension takes one."""
        body = dict(body)
        earlier = body.pop("video", None)
        earlier_id = earlier.get("id") if isinstance(earlier, dict) else None
        if not isinstance(earlier_id, str):
            raise ApiError(400, "video.id: the video to extend is required", param="video")
        extended = self._owned(key, earlier_id)
        family = self.rules.catalogue.families.get(extended.request.family if extended.request else "")
        if family is not None and "duration" not in (family.extend_fields or []):
            body.pop("seconds", None)  # its provider makes the extension's length
        return self.create(key, {**body, "extend": {"request_id": earlier_id}}, [], idempotency_key)

    def get(self, key: ApiKey, video_id: str) -> Video:
        return video_of(self._owned(key, video_id), self.rules.catalogue)

    def page(self, key: ApiKey, *, limit: int = 20, after: str | None = None, order: str = "desc") -> VideoList:
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(400, f"limit must be 1 to {MAX_PAGE}", param="limit")
        if order not in ("asc", "desc"):
            raise ApiError(400, "order must be asc or desc", param="order")
        start = self._owned(key, after) if after else None
        page = self.listing.page(key.name, limit=limit, after=start, newest_first=order == "desc")
        data = [video_of(job, self.rules.catalogue) for job in page.jobs]
        return VideoList(
            data=data,
            has_more=page.has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )

    def content_url(self, key: ApiKey, video_id: str, variant: str = "video") -> str:
        """Where the archived video (or its thumbnail) can be read for a while; 404 before it exists."""
        if variant not in _VARIANTS:
            raise ApiError(400, f"variant must be one of {', '.join(_VARIANTS)}", param="variant")
        job = self._owned(key, video_id)
        event = job.published_event
        stored = None if event is None else event.video if variant == "video" else event.thumbnail
        if job.state is not JobState.ARCHIVED or stored is None:
            raise ApiError(404, f"Video '{video_id}' has no {variant} to download (yet).", param="id")
        return self.objects.download_url(stored.bucket, stored.key)

    def delete(self, key: ApiKey, video_id: str) -> Deleted:
        """Cancels a request the provider does not have yet; removes a finished video's objects.
        One the provider is making cannot be stopped (GeminiGen has no cancel): 409."""
        job = self._owned(key, video_id)
        if not job.state.final:
            outcome = self.canceler.cancel(video_id)
            if not isinstance(outcome, Canceled):
                raise ApiError(409, f"{outcome.reason}; delete it once it has finished", param="id")
            return Deleted(id=video_id)
        event = job.final_event
        if event is not None and event.video is not None:
            stored = [event.video.key] + ([event.thumbnail.key] if event.thumbnail else [])
            self.objects.remove(event.video.bucket, stored)
            logger.info("archived video removed", extra={"request_id": video_id})
        return Deleted(id=video_id)

    def _claim(self, key: ApiKey, request_id: str, request: VideoRequest) -> Video:
        now = self.clock()
        claim = Job(
            request_id=request_id,
            state=JobState.RECEIVED,
            fingerprint=request.fingerprint(),
            created_at=now,
            updated_at=now,
            request=request,
            metadata=request.metadata,
            key=key.name,
            lease_until=now,  # held by nobody: the message's first delivery takes it
            next_check_at=self.policy.stale_claim_check(now),
        )
        if not self.store.create(claim):
            existing = self.store.get(request_id)
            if existing is None or existing.key != key.name or not existing.asks_for(claim.fingerprint):
                raise ApiError(
                    409, "this Idempotency-Key was used for another request", param="Idempotency-Key", code="conflict"
                )
            return video_of(existing, self.rules.catalogue)
        self.metrics.count("ApiRequests")
        try:
            self.request_queue.resend(request_id, request)
        except Exception:
            # Claimed: a sweep puts it on the queue once the claim is stale (see the module's note).
            logger.exception("an API request could not be put on the queue; a sweep will")
        return video_of(claim, self.rules.catalogue)

    def _owned(self, key: ApiKey, video_id: str) -> Job:
        job = self.store.get(video_id) if _is_request_id(video_id) else None
        if job is None or job.key != key.name:
            raise not_found(video_id)
        return job

    def _earlier(self, key: ApiKey) -> EarlierRequests:
        def earlier(request_id: str) -> VideoRequest | None:
            job = self.store.get(request_id)
            return job.request if job is not None and job.key == key.name else None

        return earlier

    def _input_uris(self, request_id: str, message: dict[str, Any], uploads: list[Upload]) -> list[str]:
        """Where each upload goes, added to the references of the model's family (before the
        request is read, so that it is read with them)."""
        if not uploads:
            return []
        spec = self.rules.catalogue.model(str(message.get("model") or self.rules.default_model))
        if spec is None:
            return []  # the model is refused by name
        field = self.rules.catalogue.family_of(spec).references.field
        uris = [
            f"{self.input_location}{request_id}/{index}{_extension(upload)}" for index, upload in enumerate(uploads)
        ]
        given = message.get(field)
        message[field] = [*(given if isinstance(given, list) else []), *uris]
        return uris


def _seconds_to_midnight(now: datetime) -> int:
    midnight = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    return int((midnight - now).total_seconds()) + 1


def _extension(upload: Upload) -> str:
    return mimetypes.guess_extension(upload.content_type.split(";")[0].strip()) or ""


def _is_request_id(value: str) -> bool:
    return re.fullmatch(REQUEST_ID_PATTERN, value) is not None
