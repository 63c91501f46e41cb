"""The HTTP API's router: a call as API Gateway's HTTP API gives it (payload format 2.0), the
function that answers it by its method and path, and the answer in the shape API Gateway takes.

Ours rather than Powertools' event handler: importing any part of that package loads every
resolver it has (AppSync's, and asyncio with it; Bedrock's; every event source's data classes),
about 60 ms of the API function's cold start (benchmark 5), for a handful of routes that one
regular expression each matches. Powertools still writes the API's OpenAPI document from these
routes (`Routes.openapi`), when one is asked for."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A path's parameter, written `<name>` as Powertools writes it (its document reads these paths).
_PARAMETER = re.compile(r"<(\w+)>")


class HttpMethod(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    method: str


class HttpRequestContext(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    http: HttpMethod


class HttpCall(BaseModel):
    """A call to the HTTP API, as API Gateway gives it (payload format 2.0) on the `$default`
    stage: its path is the raw path, its headers' names lower case."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, populate_by_name=True)

    path: str = Field(alias="rawPath")
    headers: dict[str, str] = {}
    query: dict[str, str] = Field(default_factory=dict, alias="queryStringParameters")
    body: str | None = None
    is_base64_encoded: bool = Field(False, alias="isBase64Encoded")
    request_context: HttpRequestContext = Field(alias="requestContext")

    @field_validator("headers")
    @classmethod
    def _lower_case_names(cls, headers: dict[str, str]) -> dict[str, str]:
        # API Gateway lowers them already; a test's or a tool's event may not.
        return {name.lower(): value for name, value in headers.items()}

    @field_validator("query", mode="before")
    @classmethod
    def _no_query_is_empty(cls, query: dict[str, str] | None) -> dict[str, str]:
        return query or {}

    @property
    def method(self) -> str:
        return self.request_context.http.method


@dataclass(frozen=True)
class Answer:
    """A call's answer: a status, a body and its headers."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def to_http_api(self) -> dict[str, Any]:
        headers = {"Content-Type": self.content_type, **self.headers}
        return {"statusCode": self.status, "headers": headers, "body": self.body, "isBase64Encoded": False}


AnswerCall = TypeVar("AnswerCall", bound=Callable[..., Answer])


@dataclass(frozen=True)
class Route:
    """`answer` takes the call, then the path's parameters by name."""

    method: str
    path: str
    answer: Callable[..., Answer]
    pattern: re.Pattern[str]
    summary: str | None
    responses: dict[int, Any] | None
    documented: bool


class Routes:
    """The API's routes, in the order they were declared; the first that matches a call answers it."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str | None = None,
        responses: dict[int, Any] | None = None,
        documented: bool = True,
    ) -> Callable[[AnswerCall], AnswerCall]:
        pieces = _PARAMETER.split(path)  # literal, name, literal, name, ..., literal
        pattern = re.compile(
            "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces))
        )

        def register(answer: AnswerCall) -> AnswerCall:
            self._routes.append(Route(method, path, answer, pattern, summary, responses, documented))
            return answer

        return register

    def find(self, call: HttpCall) -> Callable[[], Answer] | None:
        """What answers the call, or None when no route has its method and path."""
        for route in self._routes:
            matched = route.pattern.fullmatch(call.path)
            if matched and route.method == call.method:
                return functools.partial(route.answer, call, **matched.groupdict())
        return None

    def openapi(self, **info: Any) -> dict[str, Any]:
        """The OpenAPI document Powertools' resolver writes for the documented routes; `info` is
        what its `get_openapi_json_schema` takes (title, version, security, ...)."""
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

        resolver = APIGatewayHttpResolver()
        for route in self._routes:
            if route.documented:
                resolver.route(route.path, route.method, summary=route.summary, responses=route.responses)(
                    _as_documented(route.answer)
                )
        document: dict[str, Any] = json.loads(resolver.get_openapi_json_schema(**info))
        return document


def _as_documented(answer: Callable[..., Answer]) -> Callable[..., None]:
    """A stand-in with the route's name and its path's parameters, for Powertools to document: the
    call is the router's to give, not a parameter, and an Answer is not a response body (each
    route states its bodies in `responses`)."""

    def documented(**_: Any) -> None:
        """Read, never called: its resolver writes the document and resolves no call."""

    signature = inspect.signature(answer)
    path_parameters = list(signature.parameters.values())[1:]
    documented.__name__ = documented.__qualname__ = answer.__name__
    documented.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=path_parameters, return_annotation=inspect.Signature.empty
    )
    return documented
