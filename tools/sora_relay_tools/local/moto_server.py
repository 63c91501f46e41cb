"""moto's AWS emulation served with HTTP/1.1 keep-alive: `python -m sora_relay_tools.local.moto_server --port N`.

moto's own server (werkzeug's development server) closes the connection after every
answer, so each SDK call would pay for a new connection and a new server thread, as AWS
never makes it do. waitress serves the same WSGI application and keeps connections open.
"""

from __future__ import annotations

import argparse

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    # moto's work holds one interpreter lock: more threads only contend for it (with 32, the
    # poll sweep benchmark's calls cost moto a third more processor time than with 4).
    parser.add_argument("--threads", type=int, default=4, help="Requests served at once.")
    arguments = parser.parse_args()
    application = DomainDispatcherApplication(create_backend_app)
    serve(application, host=arguments.host, port=arguments.port, threads=arguments.threads, _quiet=True)


if __name__ == "__main__":
    main()
