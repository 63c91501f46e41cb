"""The local stand-ins keep connections open between calls, as AWS and the provider do."""

import http.client
from urllib.parse import urlsplit

from sora_relay import seams, wiring
from sora_relay_tools.local.stack import MotoServerProcess


def test_moto_server_process_keeps_the_connection_open() -> None:
    with MotoServerProcess() as server:
        address = urlsplit(server.endpoint_url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        answers = []
        for _ in range(2):
            connection.request("GET", "/moto-api/", headers={"Host": "motoapi.amazonaws.com"})
            answer = connection.getresponse()
            answer.read()
            answers.append((answer.status, answer.will_close))
        connection.close()
    assert answers == [(200, False), (200, False)]


def test_aws_clients_keep_a_connection_for_each_worker(stack, monkeypatch) -> None:
    monkeypatch.setenv("POLL_CONCURRENCY", "24")
    wiring.rebuild()
    client = wiring._client_as("dynamodb", seams.session_as(None))
    assert client.meta.config.max_pool_connections == 48  # two workers per status call
