"""Users' reference files, read at submission: s3:// with the worker's own role, https:// through
the vetted client, each with a size cap."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from sora_relay.adapters.media.naming import filename, guess_type
from sora_relay.adapters.media.policy import ReferencePolicy
from sora_relay.domain.ports import InvalidReference, ReferenceFile, ReferenceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING_S3 = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404"}
# The longest wait for any one read: httpx's timeouts are per read, so the whole deadline is
# checked between reads, and a server that trickles is cut off at most this long after it.
_LONGEST_READ = 10.0
# An S3 reference is read in parts this large, its deadline checked as each arrives.
_S3_CHUNK = 1024 * 1024


class ReferenceFetcher:
    """Reads `files` entries: s3:// with the worker's own role, https:// with a size cap."""

    def __init__(self, s3: S3Client, http: httpx.Client, policy: ReferencePolicy, *, max_bytes: int) -> None:
        self._s3 = s3
        self._http = http
        self._policy = policy
        self._max_bytes = max_bytes

    def problem(self, uri: str) -> str | None:
        try:
            return self._policy.problem(uri)
        except ValueError as error:  # an address urllib cannot take apart
            return f"is not a valid address ({error})"

    def fetch(self, uri: str, within: float) -> ReferenceFile:
        problem = self.problem(uri)
        if problem:
            raise InvalidReference(problem)
        if within <= 0:
            raise ReferenceUnavailable(f"{uri} was not read: no time was left to read it")
        if uri.startswith("s3://"):
            return self._from_s3(uri, within)
        try:
            return self._from_https(uri, within)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, UnicodeError) as error:
            # request.reference_problem lets no such address through; should one slip past it,
            # it is still the user's to fix, never a retry.
            raise InvalidReference(f"is not a valid address ({error})") from error

    def _from_s3(self, uri: str, within: float) -> ReferenceFile:
        """The object's bytes, read as they arrive within `within` seconds; S3's own errors and
        the transport's (a connection reset, a read timed out) are a reference not read this
        time, never the request's fault."""
        deadline = time.monotonic() + within
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
            if answer["ContentLength"] > self._max_bytes:
                answer["Body"].close()
                raise InvalidReference(f"{uri} is larger than {self._max_bytes} bytes")
            content = bytearray()
            for chunk in answer["Body"].iter_chunks(_S3_CHUNK):
                content += chunk
                if time.monotonic() > deadline:
                    answer["Body"].close()
                    raise ReferenceUnavailable(f"{uri} was not read within {within:.0f} seconds")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _MISSING_S3:
                raise InvalidReference(f"{uri} cannot be read ({code})") from error
            raise ReferenceUnavailable(f"{uri} could not be read this time ({code})") from error
        except BotoCoreError as error:
            raise ReferenceUnavailable(f"{uri} could not be read this time ({type(error).__name__})") from error
        content_type = answer.get("ContentType") or guess_type(key)
        return ReferenceFile(filename(key), content_type, bytes(content))

    def _from_https(self, uri: str, within: float) -> ReferenceFile:
        deadline = time.monotonic() + within
        read = min(within, _LONGEST_READ)
        try:
            with self._http.stream("GET", uri, timeout=httpx.Timeout(read, connect=read)) as response:
                if response.status_code >= 500 or response.status_code in {408, 429}:
                    raise ReferenceUnavailable(f"{uri} answered HTTP {response.status_code}")
                if not response.is_success:
                    raise InvalidReference(f"{uri} answered HTTP {response.status_code}")
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > self._max_bytes:
                        raise InvalidReference(f"{uri} is larger than {self._max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ReferenceUnavailable(f"{uri} was not read within {within:.0f} seconds")
                content_type = response.headers.get("content-type") or guess_type(uri)
        except httpx.TimeoutException as error:
            raise ReferenceUnavailable(
                f"{uri} was not read within {within:.0f} seconds ({type(error).__name__})"
            ) from error
        except httpx.TransportError as error:
            raise ReferenceUnavailable(f"{uri} could not be read this time ({type(error).__name__})") from error
        return ReferenceFile(filename(urlsplit(uri).path), content_type, bytes(content))
