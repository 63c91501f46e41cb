"""Which addresses the worker downloads from: https on an allowed host, or the provider's own base."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class MediaPolicy:
    allowed_host_patterns: tuple[str, ...]
    provider_base_url: str

    @classmethod
    def parse(cls, allowed_hosts: str, provider_base_url: str) -> MediaPolicy:
        patterns = tuple(part.strip().lower() for part in allowed_hosts.split(",") if part.strip())
        return cls(allowed_host_patterns=patterns, provider_base_url=provider_base_url)

    def problem(self, url: str) -> str | None:
        """Why `url` may not be downloaded, or None when it may."""
        target = urlsplit(url)
        base = urlsplit(self.provider_base_url)
        host = (target.hostname or "").lower()
        if (target.scheme, target.netloc.lower()) == (base.scheme, base.netloc.lower()):
            return None
        if target.scheme != "https":
            return f"{target.scheme or 'no'} scheme: only https addresses are downloaded"
        if not any(fnmatch.fnmatchcase(host, pattern) for pattern in self.allowed_host_patterns):
            return f"host {host or '(none)'} is not in the allowed media hosts"
        return None
