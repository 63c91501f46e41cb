"""API: the HTTP API in the shape of OpenAI's Videos API (docs/api.md), behind API Gateway."""

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sora_relay.adapters.http_bodies import read_body
from sora_relay.domain.keys import ApiKey
from sora_relay.domain.videos import ApiError, Deleted, Upload, Video, VideoList, with_request_bodies
from sora_relay.observability import logger, metrics, tracer
from sora_relay.routes import Answer, HttpCall, Routes
from sora_relay.wiring import settings, video_api

routes = Routes()


def _answers(model: type[BaseModel]) -> dict[int, Any]:
    """A route's answer, as the API's OpenAPI document states it."""
    return {200: {"description": "OK", "content": {"application/json": {"model": model}}}}


def _key(call: HttpCall) -> ApiKey:
    return video_api().authenticate(call.headers.get("authorization"))


def _answer(model: BaseModel) -> Answer:
    # The SDK polls a queued video as often as this says (a status call per poll interval is enough).
    headers = {"openai-poll-after-ms": str(settings().poll_interval_seconds * 1000)}
    return Answer(200, model.model_dump_json(exclude_none=True), headers=headers)


def _body(call: HttpCall) -> tuple[dict[str, Any], list[Upload]]:
    return read_body(call.body, call.is_base64_encoded, call.headers.get("content-type"))


@routes.route("POST", "/v1/videos", summary="Create a video", responses=_answers(Video))
def create_video(call: HttpCall) -> Answer:
    key = _key(call)
    fields, uploads = _body(call)
    return _answer(video_api().create(key, fields, uploads, call.headers.get("idempotency-key")))


@routes.route("POST", "/v1/videos/extensions", summary="Extend a video", responses=_answers(Video))
def extend_video(call: HttpCall) -> Answer:
    key = _key(call)
    fields, _ = _body(call)
    return _answer(video_api().extend(key, fields, call.headers.get("idempotency-key")))


@routes.route("GET", "/v1/videos", summary="List the key's videos", responses=_answers(VideoList))
def list_videos(call: HttpCall) -> Answer:
    key = _key(call)
    limit = call.query.get("limit", "20")
    if not limit.isdigit():
        raise ApiError(400, "limit must be a number", param="limit")
    listed: VideoList = video_api().page(
        key, limit=int(limit), after=call.query.get("after"), order=call.query.get("order", "desc")
    )
    return _answer(listed)


@routes.route("GET", "/v1/videos/<video_id>", summary="Retrieve a video", responses=_answers(Video))
def get_video(call: HttpCall, video_id: str) -> Answer:
    answer: Video = video_api().get(_key(call), video_id)
    return _answer(answer)


@routes.route(
    "GET",
    "/v1/videos/<video_id>/content",
    summary="Download a video",
    # No body: the file's address is the Location header.
    responses={302: {"description": "A short-lived address of the archived file, in Location", "content": {}}},
)
def video_content(call: HttpCall, video_id: str) -> Answer:
    url = video_api().content_url(_key(call), video_id, call.query.get("variant", "video"))
    return Answer(302, content_type="text/plain", headers={"Location": url})


@routes.route("DELETE", "/v1/videos/<video_id>", summary="Cancel or delete a video", responses=_answers(Deleted))
def delete_video(call: HttpCall, video_id: str) -> Answer:
    deleted: Deleted = video_api().delete(_key(call), video_id)
    return _answer(deleted)


@routes.route("GET", "/v1/openapi.json", documented=False)
def openapi(call: HttpCall) -> Answer:
    return Answer(200, json.dumps(api_document()))


def api_document() -> dict[str, Any]:
    """The API's OpenAPI document, made by Powertools from these routes and their models (also
    docs/openapi.json, by `make schemas`)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer  # only this call needs it

    document = routes.openapi(
        title="sora-relay",
        version="1",
        summary=__doc__,
        security_schemes={"bearer": HTTPBearer(scheme="bearer")},
        security=[{"bearer": []}],
    )
    return with_request_bodies(document)


def answer_call(call: HttpCall) -> Answer:
    """The route's answer; an ApiError's, in OpenAI's error shape (any other error fails the
    invocation: API Gateway answers 500)."""
    try:
        route = routes.find(call)
        if route is None:
            raise ApiError(404, f"Unknown call: {call.method} {call.path}")
        return route()
    except ApiError as error:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
        return Answer(error.status, json.dumps(error.body()), headers=headers)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer_call(HttpCall.model_validate(event)).to_http_api()
