"""Which addresses the worker downloads from.

Results: https on an allowed host, or the provider's own scheme and host. Reference files:
s3:// from an allowed bucket, or https on an allowed host. Either way, a host that resolves
to a loopback, private, link-local or otherwise non-public address is refused, IPv6 forms
that carry an IPv4 address (mapped, 6to4, NAT64, Teredo) judged by that address. It is
checked on every redirect hop before the request, and again when connecting: the connection
goes to the very address that was vetted (`connect_address`), so a name that changes its
answer in between (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from sora_relay.domain.ports import InvalidReference, MediaNotAllowed

Resolver = Callable[[str], Iterable[str]]

# Prefixes whose addresses embed an IPv4 address in their last 32 bits (RFC 6052, RFC 8215).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class AddressNotPublic(Exception):
    """The host resolves to no address, or to one that is not public."""


# getaddrinfo's answers that the name has no address (as opposed to a lookup that failed).
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def resolve(host: str) -> list[str]:
    """The host's addresses; none when the name has none. Raises OSError (socket.gaierror)
    when the lookup itself failed: that may work another time."""
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    except socket.gaierror as error:
        if error.errno in _NO_SUCH_NAME:
            return []
        raise


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        # A 6to4 address reaches the IPv4 address it carries, and is judged by it: Python 3.13
        # (the Lambda runtime) counts all of 2002::/16 as not global, 3.11 all of it as global.
        return ip.sixtofour.is_global
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if any(ip in network for network in _NAT64):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(v4 is None or v4.is_global for v4 in embedded)
    return True


def public_address(host: str, resolver: Resolver, public: Callable[[str], bool] = is_public) -> str:
    """The address to connect to for `host`: its first, once every address it resolves to is
    public. Raises AddressNotPublic otherwise."""
    addresses = list(resolver(host))
    if not addresses:
        raise AddressNotPublic(f"host {host} has no address")
    for address in addresses:
        if not public(address):
            raise AddressNotPublic(f"host {host} resolves to a non-public address ({address})")
    return addresses[0]


def host_problem(
    host: str, patterns: tuple[str, ...], resolver: Resolver, public: Callable[[str], bool] = is_public
) -> str | None:
    """Why `host` may not be fetched from: not on the list, or not a public address."""
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns):
        return f"host {host or '(none)'} is not in the allowed hosts"
    try:
        public_address(host, resolver, public)
    except AddressNotPublic as error:
        return str(error)
    except OSError:
        return None  # the lookup failed this time: the download will try it again, and say so
    return None


@dataclass(frozen=True)
class MediaPolicy:
    """For finished videos and their thumbnails: the provider's own host, or https on an allowed host."""

    refusal: ClassVar[type[Exception]] = MediaNotAllowed
    allowed_host_patterns: tuple[str, ...]
    provider_base_url: str
    resolver: Resolver = field(default=resolve, compare=False)
    # Which addresses count as public (tests name their loopback servers so).
    public: Callable[[str], bool] = field(default=is_public, compare=False)

    @classmethod
    def parse(cls, allowed_hosts: str, provider_base_url: str, resolver: Resolver = resolve) -> MediaPolicy:
        return cls(_patterns(allowed_hosts), provider_base_url, resolver)

    def problem(self, url: str) -> str | None:
        """Why `url` may not be downloaded, or None when it may."""
        target = urlsplit(url)
        base = urlsplit(self.provider_base_url)
        if (target.scheme, target.netloc.lower()) == (base.scheme, base.netloc.lower()):
            return None
        if target.scheme != "https":
            return f"{target.scheme or 'no'} scheme: only https addresses are downloaded"
        return host_problem((target.hostname or "").lower(), self.allowed_host_patterns, self.resolver, self.public)

    def connect_address(self, host: str, port: int) -> str:
        """Where a connection to `host` goes: the provider's own host as configured, any
        other only to a vetted public address (raises AddressNotPublic)."""
        base = urlsplit(self.provider_base_url)
        if host.lower() == (base.hostname or "").lower() and port == (base.port or _DEFAULT_PORTS.get(base.scheme)):
            return host
        return public_address(host, self.resolver, self.public)


_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class ReferencePolicy:
    """For users' references: s3:// from an allowed bucket, or https on an allowed host."""

    refusal: ClassVar[type[Exception]] = InvalidReference
    allowed_buckets: frozenset[str]
    allowed_host_patterns: tuple[str, ...]
    resolver: Resolver = field(default=resolve, compare=False)
    # The stack's own input location (s3://bucket/prefix/): uploads that come with requests.
    input_location: str = ""
    public: Callable[[str], bool] = field(default=is_public, compare=False)

    @classmethod
    def parse(
        cls, buckets: str, allowed_hosts: str, resolver: Resolver = resolve, input_location: str = ""
    ) -> ReferencePolicy:
        return cls(frozenset(_patterns(buckets)), _patterns(allowed_hosts), resolver, input_location)

    def problem(self, uri: str) -> str | None:
        """Why a `files` entry (or a redirect hop of one) may not be read, or None when it may."""
        if uri.startswith("s3://"):
            bucket = uri.removeprefix("s3://").partition("/")[0]
            in_inputs = bool(self.input_location) and uri.startswith(self.input_location) and ".." not in uri
            if bucket.lower() not in self.allowed_buckets and not in_inputs:
                return f"bucket {bucket} is not one this stack reads references from"
            return None
        target = urlsplit(uri)
        if target.scheme != "https":
            return f"{target.scheme or 'no'} scheme: only https references are read"
        return host_problem((target.hostname or "").lower(), self.allowed_host_patterns, self.resolver, self.public)

    def connect_address(self, host: str, port: int) -> str:
        """Where a connection to `host` goes: a vetted public address (raises AddressNotPublic)."""
        return public_address(host, self.resolver, self.public)
