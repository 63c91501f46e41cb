"""API Gateway's part for the local stack: each HTTP call becomes an HTTP API event (payload
format 2.0) to the function its route names, and the function's answer becomes the response.
moto deploys no HTTP API that serves calls, hence this (as `sam local start-api` does)."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# A body of these types reaches the function as text; any other, base64 (as API Gateway does).
_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def http_api_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event API Gateway's HTTP API gives a function for one call (route `ANY /v1/{proxy+}`)."""
    parts = urlsplit(target)
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered[name.lower()] = f"{lowered[name.lower()]},{value}" if name.lower() in lowered else value
    text = lowered.get("content-type", "").startswith(_TEXT_TYPES)
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "queryStringParameters": dict(parse_qsl(parts.query)) or None,
        "pathParameters": {"proxy": parts.path.removeprefix("/v1/")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "ANY /v1/{proxy+}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode() if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text and bool(body),
    }


class LocalHttpApi:
    """Serves the HTTP API on loopback; `invoke` runs the function with an event."""

    def __init__(self, invoke: Invoke, port: int = 0) -> None:
        handler = type("Handler", (_Calls,), {"invoke": staticmethod(invoke)})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        # Asked to stop, it stops within a twentieth of a second (a stack's exit waits for it).
        serve = lambda: self._server.serve_forever(poll_interval=0.05)  # noqa: E731
        self._thread = threading.Thread(target=serve, name="http-api", daemon=True)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}/v1"

    def start(self) -> LocalHttpApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Calls(BaseHTTPRequestHandler):
    invoke: Invoke
    protocol_version = "HTTP/1.1"

    def _call(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        event = http_api_event(self.command, self.path, dict(self.headers.items()), body)
        answer = self.invoke(event)
        data = answer.get("body") or ""
        payload = base64.b64decode(data) if answer.get("isBase64Encoded") else data.encode()
        self.send_response(int(answer.get("statusCode", 200)))
        for name, value in (answer.get("headers") or {}).items():
            self.send_header(name, str(value))
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _call

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        """Quiet: the function logs each call."""
