"""API: the HTTP API in the shape of OpenAI's Videos API (docs/api.md), behind API Gateway."""

import base64
import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sora_relay.domain.keys import ApiKey
from sora_relay.domain.videos import ApiError, Deleted, Upload, Video, VideoList, form_fields
from sora_relay.observability import logger, metrics, tracer
from sora_relay.wiring import settings, video_api

app = APIGatewayHttpResolver()
# What an upload may weigh: API Gateway takes bodies of at most 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024


def _key() -> ApiKey:
    return video_api().authenticate(app.current_event.headers.get("authorization"))


def _answer(model: BaseModel, status: int = 200) -> Response[str]:
    # The SDK polls a queued video as often as this says (a status call per poll interval is enough).
    headers = {"openai-poll-after-ms": str(settings().poll_interval_seconds * 1000)}
    body = model.model_dump_json(exclude_none=True)
    return Response(status, "application/json", body, headers=headers)


def _body() -> tuple[dict[str, Any], list[Upload]]:
    """The call's fields and files, from JSON or from a multipart form."""
    event = app.current_event
    raw = event.body or ""
    data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
    content_type = event.headers.get("content-type", "application/json")
    if content_type.startswith("multipart/form-data"):
        return _form(data, content_type)
    try:
        fields = json.loads(data or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise ApiError(400, "the body must be a JSON object")
    return fields, []


def _form(data: bytes, content_type: str) -> tuple[dict[str, Any], list[Upload]]:
    # The standard library's MIME parser reads a form: Powertools reads one only for routes whose
    # fields it declares, and a request's fields are each model family's own.
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + data)
    if not message.is_multipart():
        raise ApiError(400, "the multipart body could not be read")
    pairs: list[tuple[str, str]] = []
    uploads: list[Upload] = []
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        filename = part.get_filename()
        if filename is not None and name == "input_reference":
            uploads.append(Upload(filename=filename, content_type=part.get_content_type(), data=payload))
        else:
            pairs.append((name, payload.decode("utf-8", "replace")))
    return form_fields(pairs), uploads


@app.post(
    "/v1/videos",
    summary="Create a video",
    responses={200: {"description": "OK", "content": {"application/json": {"model": Video}}}},
)
def create_video() -> Response[str]:
    key = _key()
    fields, uploads = _body()
    return _answer(video_api().create(key, fields, uploads, app.current_event.headers.get("idempotency-key")))


@app.post(
    "/v1/videos/extensions",
    summary="Extend a video",
    responses={200: {"description": "OK", "content": {"application/json": {"model": Video}}}},
)
def extend_video() -> Response[str]:
    key = _key()
    fields, _ = _body()
    return _answer(video_api().extend(key, fields, app.current_event.headers.get("idempotency-key")))


@app.get(
    "/v1/videos",
    summary="List the key's videos",
    responses={200: {"description": "OK", "content": {"application/json": {"model": VideoList}}}},
)
def list_videos() -> Response[str]:
    key = _key()
    query = app.current_event.query_string_parameters or {}
    limit = query.get("limit", "20")
    if not limit.isdigit():
        raise ApiError(400, "limit must be a number", param="limit")
    listed: VideoList = video_api().page(
        key, limit=int(limit), after=query.get("after"), order=query.get("order", "desc")
    )
    return _answer(listed)


@app.get(
    "/v1/videos/<video_id>",
    summary="Retrieve a video",
    responses={200: {"description": "OK", "content": {"application/json": {"model": Video}}}},
)
def get_video(video_id: str) -> Response[str]:
    answer: Video = video_api().get(_key(), video_id)
    return _answer(answer)


@app.get(
    "/v1/videos/<video_id>/content",
    summary="Download a video",
    responses={302: {"description": "A short-lived address of the archived file"}},
)
def video_content(video_id: str) -> Response[str]:
    variant = (app.current_event.query_string_parameters or {}).get("variant", "video")
    url = video_api().content_url(_key(), video_id, variant)
    return Response(302, "text/plain", "", headers={"Location": url})


@app.delete(
    "/v1/videos/<video_id>",
    summary="Cancel or delete a video",
    responses={200: {"description": "OK", "content": {"application/json": {"model": Deleted}}}},
)
def delete_video(video_id: str) -> Response[str]:
    deleted: Deleted = video_api().delete(_key(), video_id)
    return _answer(deleted)


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    """The API's OpenAPI document, made by Powertools from these routes and their models."""
    document = app.get_openapi_json_schema(title="sora-relay", version="1", summary=__doc__)
    return Response(200, "application/json", document)


@app.exception_handler(ApiError)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def api_error(error: ApiError) -> Response[str]:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return Response(error.status, "application/json", json.dumps(error.body()), headers=headers)


@app.not_found
def no_such_call(_: Exception) -> Response[str]:
    error = ApiError(404, f"Unknown call: {app.current_event.http_method} {app.current_event.path}")
    return Response(404, "application/json", json.dumps(error.body()))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
