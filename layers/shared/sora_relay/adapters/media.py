"""Downloads: reference files for a submission, and finished videos streamed into S3."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from sora_relay.events import VideoObject
from sora_relay.media_policy import MediaPolicy, ReferencePolicy
from sora_relay.ports import InvalidReference, MediaGone, MediaNotAllowed, ReferenceFile, ReferenceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Uploads land here first; the archive key is written only by a copy that carries the final checksum.
STAGING_PREFIX = ".incoming/"
DOWNLOAD_CHUNK = 1024 * 1024
# A 15-second 1080p video is tens of MiB: anything near this is not a video we asked for.
MAX_VIDEO_BYTES = 10 * 1024**3
_GONE = {403, 404, 410}
_MISSING_S3 = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404"}


class IncompleteDownload(Exception):
    """The body ended before (or ran past) the length the server announced, or past the cap."""


def make_media_client(policy: MediaPolicy, *, timeout: float = 60.0) -> httpx.Client:
    """Follows redirects, but every hop must pass the policy: checked in a request hook."""

    def check(request: httpx.Request) -> None:
        problem = policy.problem(str(request.url))
        if problem:
            raise MediaNotAllowed(problem)

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=True,
        transport=httpx.HTTPTransport(retries=2),
        event_hooks={"request": [check]},
    )


def make_reference_client(policy: ReferencePolicy, *, timeout: float = 60.0) -> httpx.Client:
    """For users' https references: every hop, redirects included, must pass the policy."""

    def check(request: httpx.Request) -> None:
        problem = policy.problem(str(request.url))
        if problem:
            raise InvalidReference(problem)

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=True,
        transport=httpx.HTTPTransport(retries=2),
        event_hooks={"request": [check]},
    )


class HashingReader:
    """A file-like view of a download that hashes and counts what passes through.

    s3transfer reads a non-seekable file object one part at a time, so memory stays
    bounded by the part size; it aborts the multipart upload if `read` raises.
    """

    def __init__(self, chunks: Iterator[bytes], expected_size: int | None, max_size: int = MAX_VIDEO_BYTES) -> None:
        if expected_size is not None and expected_size > max_size:
            raise IncompleteDownload(f"the server announced {expected_size} bytes, more than the {max_size} allowed")
        self._chunks = chunks
        self._expected = expected_size
        self._max_size = max_size
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            try:
                chunk = next(self._chunks, None)
            except httpx.TransportError as error:  # such as a connection closed mid-body
                raise IncompleteDownload(f"the download broke off after {self.size} bytes: {error}") from error
            if chunk is None:
                self._ended = True
                if self._expected is not None and self.size != self._expected:
                    raise IncompleteDownload(f"got {self.size} of {self._expected} bytes")
                break
            self.size += len(chunk)
            if self._expected is not None and self.size > self._expected:
                raise IncompleteDownload(f"got more than the {self._expected} bytes announced")
            if self.size > self._max_size:
                raise IncompleteDownload(f"got more than the {self._max_size} bytes allowed")
            self._sha256.update(chunk)
            self._buffer += chunk
        take = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:take])
        del self._buffer[:take]
        return out

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class S3VideoArchive:
    def __init__(
        self,
        s3: S3Client,
        http: httpx.Client,
        bucket: str,
        *,
        part_size: int = 8 * 1024 * 1024,
        concurrency: int = 4,
    ) -> None:
        self._s3 = s3
        self._http = http
        self._bucket = bucket
        self._upload = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=concurrency
        )
        # Parts read from a stream and not yet uploaded: this bounds memory to about
        # part_size x (concurrency + 1), whatever the video's size.
        self._upload.max_in_memory_upload_chunks = concurrency
        # Server-side copy: a single CopyObject (full-object SHA-256) up to S3's 5 GiB limit.
        self._copy = TransferConfig(multipart_threshold=5 * 1024**3, multipart_chunksize=512 * 1024**2)

    def copy(self, url: str, key: str, content_type: str) -> VideoObject:
        staging = f"{STAGING_PREFIX}{key}.{uuid.uuid4().hex}"
        with self._http.stream("GET", url) as response:
            if response.status_code in _GONE:
                raise MediaGone(f"the video's address answered HTTP {response.status_code}")
            response.raise_for_status()
            length = response.headers.get("content-length")
            reader = HashingReader(response.iter_bytes(DOWNLOAD_CHUNK), int(length) if length else None)
            # A failed upload leaves nothing behind (s3transfer aborts it); a finished one is
            # removed below, whatever happens to the copy.
            self._s3.upload_fileobj(
                reader,  # type: ignore[arg-type]
                self._bucket,
                staging,
                ExtraArgs={"ChecksumAlgorithm": "SHA256", "ContentType": content_type},
                Config=self._upload,
            )
        try:
            sha256 = reader.hexdigest()
            self._s3.copy(
                {"Bucket": self._bucket, "Key": staging},
                self._bucket,
                key,
                ExtraArgs={
                    "Metadata": {"sha256": sha256},
                    "MetadataDirective": "REPLACE",
                    "ContentType": content_type,
                    "ChecksumAlgorithm": "SHA256",
                },
                Config=self._copy,
            )
            self._verify(key, reader.size, sha256)
        finally:
            self._s3.delete_object(Bucket=self._bucket, Key=staging)
        return VideoObject(
            bucket=self._bucket,
            key=key,
            uri=f"s3://{self._bucket}/{key}",
            size=reader.size,
            sha256=sha256,
            content_type=content_type,
        )

    def _verify(self, key: str, size: int, sha256: str) -> None:
        head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        if head["ContentLength"] != size:
            raise IncompleteDownload(f"archived {head['ContentLength']} bytes, downloaded {size}")
        stored = head.get("ChecksumSHA256")
        # A full-object checksum (no "-N" part count) is S3's own SHA-256 of the bytes it holds.
        if stored and "-" not in stored and stored != base64.b64encode(bytes.fromhex(sha256)).decode():
            raise IncompleteDownload("S3's SHA-256 of the archived object differs from the download's")


class ReferenceFetcher:
    """Reads `files` entries: s3:// with the worker's own role, https:// with a size cap."""

    def __init__(self, s3: S3Client, http: httpx.Client, policy: ReferencePolicy, *, max_bytes: int) -> None:
        self._s3 = s3
        self._http = http
        self._policy = policy
        self._max_bytes = max_bytes

    def fetch(self, uri: str) -> ReferenceFile:
        problem = self._policy.problem(uri)
        if problem:
            raise InvalidReference(problem)
        if uri.startswith("s3://"):
            return self._from_s3(uri)
        return self._from_https(uri)

    def _from_s3(self, uri: str) -> ReferenceFile:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _MISSING_S3:
                raise InvalidReference(f"{uri} cannot be read ({code})") from error
            raise ReferenceUnavailable(f"{uri} could not be read this time ({code})") from error
        if answer["ContentLength"] > self._max_bytes:
            answer["Body"].close()
            raise InvalidReference(f"{uri} is larger than {self._max_bytes} bytes")
        content_type = answer.get("ContentType") or _guess_type(key)
        return ReferenceFile(_filename(key), content_type, answer["Body"].read())

    def _from_https(self, uri: str) -> ReferenceFile:
        try:
            with self._http.stream("GET", uri) as response:
                if response.status_code >= 500 or response.status_code in {408, 429}:
                    raise ReferenceUnavailable(f"{uri} answered HTTP {response.status_code}")
                if not response.is_success:
                    raise InvalidReference(f"{uri} answered HTTP {response.status_code}")
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > self._max_bytes:
                        raise InvalidReference(f"{uri} is larger than {self._max_bytes} bytes")
                content_type = response.headers.get("content-type") or _guess_type(uri)
        except httpx.TransportError as error:
            raise ReferenceUnavailable(f"{uri} could not be read this time ({type(error).__name__})") from error
        return ReferenceFile(_filename(urlsplit(uri).path), content_type, bytes(content))


def _filename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "reference"


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
