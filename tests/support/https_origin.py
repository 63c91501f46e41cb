"""A TLS web server on loopback, standing in for a CDN or a user's image host."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    # Compress the body whatever the request asks for, as some CDNs do.
    gzip: bool = False
    # Seconds between two bytes of the body: a server that trickles it.
    trickle: float = 0


@dataclass
class Seen:
    host: str
    path: str
    accept_encoding: str | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class HttpsOrigin:
    """Answers `answers[path]` (404 otherwise) with a certificate for `hosts`, issued by a
    test CA that only `client_ssl()` trusts. Listens on 127.0.0.1 alone."""

    hosts: tuple[str, ...]
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ca = trustme.CA()
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*self.hosts).configure_cert(server_ssl)
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.seen.append(Seen(self.headers["Host"], self.path, self.headers.get("Accept-Encoding")))
                answer = origin.answers.get(self.path, Answer(status=404, body=b"not found"))
                body = gzip.compress(answer.body) if answer.gzip else answer.body
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(body)))
                if answer.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if not answer.trickle:
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(
                    self.headers["Host"], self.path, None, {k.lower(): v for k, v in self.headers.items()}, body
                )
                origin.seen.append(seen)
                answer = origin.answers.get(self.path, Answer(status=404, body=b"not found"))
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(answer.body)))
                if 300 <= answer.status < 400:
                    self.send_header("Location", "https://images.test/elsewhere")
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = server_ssl.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, host: str, path: str) -> str:
        return f"https://{host}:{self.port}{path}"

    def client_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
