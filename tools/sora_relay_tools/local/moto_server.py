"""moto's AWS emulation served with HTTP/1.1 keep-alive: `python -m sora_relay_tools.local.moto_server --port N`.

moto's own server (werkzeug's development server) closes the connection after every
answer, so each SDK call would pay for a new connection and a new server thread, as AWS
never makes it do. waitress serves the same WSGI application and keeps connections open.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve, wasyncore
from waitress.server import create_server

# moto's work holds one interpreter lock: more threads only contend for it (with 32, the poll
# sweep benchmark's calls cost moto a third more processor time than with 4).
THREADS = 4


class _Dispatcher(DomainDispatcherApplication):
    """moto's WSGI application, which tells each request's service from its host name or its
    signature: moto lists its package's folders and tries every service's address pattern for
    that name on every request; the answer for a name never changes, so it is worked out once
    (a GetItem, client and server, then costs 5.4-5.7 ms of processor time rather than 6.4-6.7)."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class MotoServerThread:
    """The same server in a thread of this process (moto's state is this process's), on loopback:
    for the CPU it costs per call, about 0.85 of moto's own threaded server (which opens a
    connection and a thread for every call and logs each)."""

    def __init__(self, port: int = 0) -> None:
        application = _Dispatcher()
        # Threads enough for every trigger's long poll at once besides the calls that must not wait on them.
        self._server = create_server(application, host="127.0.0.1", port=port, threads=4 * THREADS)
        self._thread = threading.Thread(target=self._server.run, name="moto-server", daemon=True)
        self.endpoint_url = f"http://127.0.0.1:{self._server.effective_port}"

    def start(self) -> MotoServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        # The loop ends once its sockets are closed, which its own thread must do (closed from
        # another, they fail the select it is in): the trigger runs the closing in that thread.
        sockets = self._server._map  # the sockets it serves, by waitress's name
        with contextlib.suppress(OSError):  # the trigger already closed: the loop has ended
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
        self._thread.join(timeout=10)
        wasyncore.close_all(sockets, ignore_all=True)  # what an ended loop left open
        self._server.task_dispatcher.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=THREADS, help="Requests served at once.")
    arguments = parser.parse_args()
    application = _Dispatcher()
    serve(application, host=arguments.host, port=arguments.port, threads=arguments.threads, _quiet=True)


if __name__ == "__main__":
    main()
