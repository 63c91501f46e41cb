"""API: the HTTP API in the shape of OpenAI's Videos API (docs/api.md), behind API Gateway."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sora_relay.adapters.http_bodies import read_body
from sora_relay.domain.keys import ApiKey
from sora_relay.domain.videos import ApiError, Deleted, Upload, Video, VideoList, with_request_bodies
from sora_relay.observability import logger, metrics, tracer
from sora_relay.wiring import settings, video_api

app = APIGatewayHttpResolver()


def _answers(model: type[BaseModel]) -> dict[int, Any]:
    """A route's answer, as the API's OpenAPI document states it."""
    return {200: {"description": "OK", "content": {"application/json": {"model": model}}}}


def _key() -> ApiKey:
    return video_api().authenticate(app.current_event.headers.get("authorization"))


def _answer(model: BaseModel, status: int = 200) -> Response[str]:
    # The SDK polls a queued video as often as this says (a status call per poll interval is enough).
    headers = {"openai-poll-after-ms": str(settings().poll_interval_seconds * 1000)}
    body = model.model_dump_json(exclude_none=True)
    return Response(status, "application/json", body, headers=headers)


def _body() -> tuple[dict[str, Any], list[Upload]]:
    event = app.current_event
    return read_body(event.body, bool(event.is_base64_encoded), event.headers.get("content-type"))


@app.post(
    "/v1/videos",
    summary="Create a video",
    responses=_answers(Video),
)
def create_video() -> Response[str]:
    key = _key()
    fields, uploads = _body()
    return _answer(video_api().create(key, fields, uploads, app.current_event.headers.get("idempotency-key")))


@app.post(
    "/v1/videos/extensions",
    summary="Extend a video",
    responses=_answers(Video),
)
def extend_video() -> Response[str]:
    key = _key()
    fields, _ = _body()
    return _answer(video_api().extend(key, fields, app.current_event.headers.get("idempotency-key")))


@app.get(
    "/v1/videos",
    summary="List the key's videos",
    responses=_answers(VideoList),
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
    responses=_answers(Video),
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
    responses=_answers(Deleted),
)
def delete_video(video_id: str) -> Response[str]:
    deleted: Deleted = video_api().delete(_key(), video_id)
    return _answer(deleted)


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, "application/json", json.dumps(api_document()))


def api_document() -> dict[str, Any]:
    """The API's OpenAPI document, made by Powertools from these routes and their models (also
    docs/openapi.json, by `make schemas`)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer  # only this call needs it

    document = app.get_openapi_json_schema(
        title="sora-relay",
        version="1",
        summary=__doc__,
        security_schemes={"bearer": HTTPBearer(scheme="bearer")},
        security=[{"bearer": []}],
    )
    return with_request_bodies(json.loads(document))


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
