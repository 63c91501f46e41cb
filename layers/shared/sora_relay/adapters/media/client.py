"""The httpx client for addresses outside the stack: every redirect hop checked by a policy,
every connection made to the address that policy vetted."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import ClassVar, Protocol

import httpcore
import httpx
from httpcore import SOCKET_OPTION

from sora_relay.adapters.media.policy import AddressNotPublic


class AddressPolicy(Protocol):
    """What a download may fetch (MediaPolicy, ReferencePolicy), and what a refusal raises."""

    refusal: ClassVar[type[Exception]]

    def problem(self, url: str) -> str | None: ...

    def connect_address(self, host: str, port: int) -> str: ...


class _VettedConnections(httpcore.SyncBackend):
    """Opens each connection to the address the policy vetted for its host, never to what a
    second lookup might answer (DNS rebinding). TLS still names the host: httpcore passes the
    origin's host name to the handshake, whatever address the socket went to."""

    def __init__(self, connect_address: Callable[[str, int], str], refused: Callable[[str], Exception]) -> None:
        self._connect_address = connect_address
        self._refused = refused

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            address = self._connect_address(host, port)
        except AddressNotPublic as error:
            raise self._refused(str(error)) from error
        except OSError as error:  # the lookup failed this time: a connection error, worth another try
            raise httpcore.ConnectError(f"looking up {host} failed: {error}") from error
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


class _VettedTransport(httpx.HTTPTransport):
    # httpx takes no network backend, so its connection pool is made again with ours; this is
    # the pool HTTPTransport would make for these arguments, but for `network_backend`.
    def __init__(self, backend: httpcore.NetworkBackend, verify: ssl.SSLContext | bool) -> None:
        # One context for both pools (loading the CA bundle takes tens of milliseconds).
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, retries=2, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            retries=2,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def vetted_client(
    policy: AddressPolicy, *, timeout: float = 60.0, verify: ssl.SSLContext | bool = True, follow_redirects: bool = True
) -> httpx.Client:
    """Follows redirects (unless told not to), but every hop must pass the policy (a request
    hook), and every connection goes to an address the policy vetted (the network backend)."""

    def check(request: httpx.Request) -> None:
        reason = policy.problem(str(request.url))
        if reason:
            raise policy.refusal(reason)

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=follow_redirects,
        transport=_VettedTransport(_VettedConnections(policy.connect_address, policy.refusal), verify),
        # The bytes stored are the bytes sent: a compressed body would be counted one way by
        # Content-Length and another by the decoder.
        headers={"Accept-Encoding": "identity"},
        event_hooks={"request": [check]},
        trust_env=False,  # a proxy would connect on our behalf to an address we never vetted
    )
