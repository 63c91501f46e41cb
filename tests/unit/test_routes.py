"""The HTTP API's router: a call reaches the route of its method and path, with the path's
parameters by name; any other call reaches none; an answer leaves in API Gateway's shape."""

from sora_relay.routes import Answer, HttpCall, Routes
from sora_relay_tools.local.http_api import http_api_event


def call(method: str, target: str, headers: dict[str, str] | None = None) -> HttpCall:
    return HttpCall.model_validate(http_api_event(method, target, headers or {}, b""))


def routes() -> Routes:
    table = Routes()

    @table.route("GET", "/v1/videos/<video_id>")
    def get_video(call: HttpCall, video_id: str) -> Answer:
        return Answer(200, f"get {video_id}")

    @table.route("GET", "/v1/videos/<video_id>/content")
    def video_content(call: HttpCall, video_id: str) -> Answer:
        return Answer(302, headers={"Location": f"https://example.com/{video_id}?{call.query['variant']}"})

    @table.route("DELETE", "/v1/videos/<video_id>")
    def delete_video(call: HttpCall, video_id: str) -> Answer:
        return Answer(200, f"delete {video_id}")

    return table


def test_a_call_reaches_the_route_of_its_method_and_path_with_the_paths_parameter() -> None:
    table = routes()
    found = [table.find(call(method, "/v1/videos/video_7")) for method in ("GET", "DELETE")]
    assert [route().body for route in found if route is not None] == ["get video_7", "delete video_7"]


def test_a_route_reads_the_calls_query() -> None:
    found = routes().find(call("GET", "/v1/videos/video_7/content?variant=thumbnail"))
    assert found is not None
    assert found().headers == {"Location": "https://example.com/video_7?thumbnail"}


def test_a_path_no_route_has_reaches_none() -> None:
    table = routes()
    assert table.find(call("GET", "/v1/videos/video_7/remix")) is None
    assert table.find(call("GET", "/v1/videos/")) is None  # a parameter is never empty


def test_a_method_the_path_has_no_route_for_reaches_none() -> None:
    assert routes().find(call("POST", "/v1/videos/video_7")) is None


def test_an_answer_leaves_in_the_http_apis_shape_with_its_content_type() -> None:
    answer = Answer(429, '{"error": {}}', headers={"Retry-After": "7"})
    assert answer.to_http_api() == {
        "statusCode": 429,
        "headers": {"Content-Type": "application/json", "Retry-After": "7"},
        "body": '{"error": {}}',
        "isBase64Encoded": False,
    }


def test_a_calls_header_names_are_read_in_lower_case_and_no_query_is_an_empty_one() -> None:
    event = http_api_event("GET", "/v1/videos", {}, b"") | {"headers": {"Authorization": "Bearer k"}}
    read = HttpCall.model_validate(event)
    assert (read.headers, read.query, read.method, read.path) == (
        {"authorization": "Bearer k"},
        {},
        "GET",
        "/v1/videos",
    )
