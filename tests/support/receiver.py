"""A webhook receiver on loopback, as an application runs one: it verifies each delivery with
the Standard Webhooks library and keeps what it verified; it can be down for a while."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: dict[str, Any] | None


@dataclass
class WebhookReceiver:
    secret: str  # whsec_...
    # Each delivery of an event id that has had fewer attempts than this is refused (503).
    refuse_first: int = 0
    down: bool = False
    received: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the standard library's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                message_id = headers.get("webhook-id", "")
                receiver.attempts[message_id] += 1
                if receiver.down or receiver.attempts[message_id] <= receiver.refuse_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    verified = Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError:
                    verified = None
                receiver.received.append(Received(headers, body, verified))
                self.send_response(204 if verified is not None else 400)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def verified(self, request_id: str) -> list[dict[str, Any]]:
        """The events of `request_id` it verified, in the order they came."""
        found = [r.verified for r in self.received if r.verified is not None]
        return [event for event in found if event["request_id"] == request_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def as_json(received: Received) -> dict[str, Any]:
    return json.loads(received.body)
