"""Which addresses the worker downloads from.

Results: https on an allowed host, or the provider's own scheme and host. Reference files:
s3:// from an allowed bucket, or https on an allowed host. Either way, a host that resolves
to a loopback, private, link-local or otherwise non-public address is refused (checked on
every redirect hop, just before the request; a name that changes its answer between that
check and the connection is not caught).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Resolver = Callable[[str], Iterable[str]]


def resolve(host: str) -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    except socket.gaierror:
        return []  # the request itself will fail and say so


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def host_problem(host: str, patterns: tuple[str, ...], resolver: Resolver) -> str | None:
    """Why `host` may not be fetched from: not on the list, or not a public address."""
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns):
        return f"host {host or '(none)'} is not in the allowed hosts"
    for address in resolver(host):
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            return f"host {host} resolves to a non-public address ({address})"
    return None


@dataclass(frozen=True)
class MediaPolicy:
    allowed_host_patterns: tuple[str, ...]
    provider_base_url: str
    resolver: Resolver = field(default=resolve, compare=False)

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
        return host_problem((target.hostname or "").lower(), self.allowed_host_patterns, self.resolver)


@dataclass(frozen=True)
class ReferencePolicy:
    allowed_buckets: frozenset[str]
    allowed_host_patterns: tuple[str, ...]
    resolver: Resolver = field(default=resolve, compare=False)
    # The stack's own input location (s3://bucket/prefix/): uploads that come with requests.
    input_location: str = ""

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
        return host_problem((target.hostname or "").lower(), self.allowed_host_patterns, self.resolver)
