"""Downloads: reference files for a submission, and finished videos streamed into S3."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpcore
import httpx
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from httpcore import SOCKET_OPTION

from sora_relay.events import ThumbnailObject, VideoObject
from sora_relay.media_policy import AddressNotPublic, MediaPolicy, ReferencePolicy
from sora_relay.ports import InvalidReference, MediaGone, MediaNotAllowed, ReferenceFile, ReferenceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOWNLOAD_CHUNK = 1024 * 1024
# A 15-second 1080p video is tens of MiB: anything near this is not a video we asked for.
# It also fits, whole, in the archive function's ephemeral storage (10 GiB), where a video
# above SINGLE_PUT_MAX is spooled.
MAX_VIDEO_BYTES = 8 * 1024**3
# Up to this size (announced), a video is held in memory and written with one PutObject; the
# join holds it twice at most, so the archiver's peak stays under 256 MiB (1024 MB function).
# Sora's videos are tens of MiB: nearly all take this path.
SINGLE_PUT_MAX = 64 * 1024**2
# A video's still: anything larger is not one.
MAX_THUMBNAIL_BYTES = 10 * 1024**2
# The image types a thumbnail may have (contract section 3), and the extension each gets.
THUMBNAIL_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_GONE = {403, 404, 410}
_MISSING_S3 = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404"}


class IncompleteDownload(Exception):
    """The body ended before (or ran past) the length the server announced, or past the cap."""


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


def _vetted_client(
    problem: Callable[[str], str | None],
    connect_address: Callable[[str, int], str],
    refused: Callable[[str], Exception],
    timeout: float,
    verify: ssl.SSLContext | bool,
) -> httpx.Client:
    """Follows redirects, but every hop must pass the policy (a request hook), and every
    connection goes to an address the policy vetted (the network backend)."""

    def check(request: httpx.Request) -> None:
        reason = problem(str(request.url))
        if reason:
            raise refused(reason)

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=True,
        transport=_VettedTransport(_VettedConnections(connect_address, refused), verify),
        # The bytes stored are the bytes sent: a compressed body would be counted one way by
        # Content-Length and another by the decoder.
        headers={"Accept-Encoding": "identity"},
        event_hooks={"request": [check]},
        trust_env=False,  # a proxy would connect on our behalf to an address we never vetted
    )


def make_media_client(
    policy: MediaPolicy, *, timeout: float = 60.0, verify: ssl.SSLContext | bool = True
) -> httpx.Client:
    """For finished videos: the provider's own host, or https on an allowed host."""
    return _vetted_client(policy.problem, policy.connect_address, MediaNotAllowed, timeout, verify)


def make_reference_client(
    policy: ReferencePolicy, *, timeout: float = 60.0, verify: ssl.SSLContext | bool = True
) -> httpx.Client:
    """For users' https references: every hop, redirects included, must pass the policy."""
    return _vetted_client(policy.problem, policy.connect_address, InvalidReference, timeout, verify)


class HashingReader:
    """A download's chunks, each hashed and counted as it passes; the length checked at the end.

    With `part_size`, it also hashes each part of that size: S3's SHA-256 of an object
    uploaded in parts is the SHA-256 of those parts' digests.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        expected_size: int | None,
        max_size: int = MAX_VIDEO_BYTES,
        part_size: int | None = None,
    ) -> None:
        if expected_size is not None and expected_size > max_size:
            raise IncompleteDownload(f"the server announced {expected_size} bytes, more than the {max_size} allowed")
        self._chunks = chunks
        self._expected = expected_size
        self._max_size = max_size
        self._sha256 = hashlib.sha256()
        self._part_size = part_size
        self._part = hashlib.sha256()
        self._part_filled = 0
        self._part_digests: list[bytes] = []
        self.size = 0
        self._ended = False

    def read_whole(self) -> bytes:
        """The whole body at once, held twice at most while it is joined."""
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The body's chunks as they come, each counted and hashed."""
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def _next_chunk(self) -> bytes | None:
        """The next chunk, counted and hashed; None at the end, once its length is checked."""
        if self._ended:
            return None
        try:
            chunk = next(self._chunks, None)
        except httpx.TransportError as error:  # such as a connection closed mid-body
            raise IncompleteDownload(f"the download broke off after {self.size} bytes: {error}") from error
        if chunk is None:
            self._ended = True
            if self._expected is not None and self.size != self._expected:
                raise IncompleteDownload(f"got {self.size} of {self._expected} bytes")
            return None
        self.size += len(chunk)
        if self._expected is not None and self.size > self._expected:
            raise IncompleteDownload(f"got more than the {self._expected} bytes announced")
        if self.size > self._max_size:
            raise IncompleteDownload(f"got more than the {self._max_size} bytes allowed")
        self._sha256.update(chunk)
        if self._part_size is not None:
            self._hash_parts(chunk)
        return chunk

    def _hash_parts(self, chunk: bytes) -> None:
        assert self._part_size is not None
        view = memoryview(chunk)
        while view:
            take = min(len(view), self._part_size - self._part_filled)
            self._part.update(view[:take])
            self._part_filled += take
            view = view[take:]
            if self._part_filled == self._part_size:
                self._part_digests.append(self._part.digest())
                self._part, self._part_filled = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()

    def b64digest(self) -> str:
        """The SHA-256 as S3 states it (ChecksumSHA256)."""
        return base64.b64encode(self._sha256.digest()).decode()

    def s3_checksums(self) -> set[str]:
        """What S3 may state as the object's SHA-256 (base64): of the whole, or of its parts."""
        checksums = {self.b64digest()}
        if self._part_size is not None:
            digests = self._part_digests + ([self._part.digest()] if self._part_filled else [])
            checksums.add(base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode())
        return checksums


class S3VideoArchive:
    def __init__(
        self,
        s3: S3Client,
        http: httpx.Client,
        bucket: str,
        *,
        part_size: int = 8 * 1024 * 1024,
        concurrency: int = 4,
        single_put_max: int = SINGLE_PUT_MAX,
    ) -> None:
        self._s3 = s3
        self._http = http
        self._bucket = bucket
        self._single_put_max = single_put_max
        self._upload = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=concurrency
        )

    def copy(self, url: str, key: str, content_type: str) -> VideoObject:
        with self._http.stream("GET", url) as response:
            if response.status_code in _GONE:
                raise MediaGone(f"the video's address answered HTTP {response.status_code}")
            response.raise_for_status()
            size = _announced_size(response)
            if size is not None and size <= self._single_put_max:
                reader = HashingReader(response.iter_bytes(DOWNLOAD_CHUNK), size)
                return self._put_whole(reader.read_whole(), reader, key, content_type)
            return self._put_spooled(response, size, key, content_type)

    def copy_thumbnail(self, url: str, key_stem: str, within: float) -> ThumbnailObject:
        """A small image, read whole within `within` seconds (httpx's timeouts bound each read,
        not the whole body), then written with one checksummed PutObject."""
        deadline = time.monotonic() + within
        with self._http.stream("GET", url, timeout=httpx.Timeout(within)) as response:
            response.raise_for_status()
            content_type = _thumbnail_type(response.headers.get("content-type", ""), url)
            body = bytearray()
            for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                body += chunk
                if len(body) > MAX_THUMBNAIL_BYTES:
                    raise IncompleteDownload(f"the thumbnail is larger than {MAX_THUMBNAIL_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise IncompleteDownload(f"the thumbnail took longer than {within:g} s")
        if not body:
            raise IncompleteDownload("the thumbnail is empty")
        key = f"{key_stem}.{THUMBNAIL_EXTENSIONS[content_type]}"
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=bytes(body), ContentType=content_type, ChecksumAlgorithm="SHA256"
        )
        return ThumbnailObject(
            bucket=self._bucket, key=key, uri=f"s3://{self._bucket}/{key}", size=len(body), content_type=content_type
        )

    def _put_whole(self, body: bytes, reader: HashingReader, key: str, content_type: str) -> VideoObject:
        """One PutObject: the key appears only whole, with its metadata. botocore sends the
        body's SHA-256, S3 refuses the body if its own differs (BadDigest) and answers with the
        SHA-256 it stored, which must be the download's."""
        answer = self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata={"sha256": reader.hexdigest()},
            ChecksumAlgorithm="SHA256",
        )
        stored = answer.get("ChecksumSHA256")
        if not stored:
            raise IncompleteDownload("S3 stated no SHA-256 of the archived object: it cannot be verified")
        if stored != reader.b64digest():
            raise IncompleteDownload("S3's SHA-256 of the archived object differs from the download's")
        return self._stored(key, reader, content_type)

    def _put_spooled(self, response: httpx.Response, size: int | None, key: str, content_type: str) -> VideoObject:
        """Too large to hold in memory, or of unknown size: written to the function's ephemeral
        storage as it downloads (and hashed), then uploaded from there with its SHA-256 already
        in the metadata: one multipart upload, parts read and sent in parallel, each checked by
        S3; the key appears only when it completes. No staging object, no server-side copy.
        The file is unlinked from the start: it goes with the process, whatever happens."""
        part_size = self._upload.multipart_chunksize  # the parts S3's checksum of parts is of
        reader = HashingReader(response.iter_bytes(DOWNLOAD_CHUNK), size, part_size=part_size)
        with tempfile.TemporaryFile() as spool:
            for chunk in reader.chunks():
                spool.write(chunk)
            spool.seek(0)
            if reader.size <= self._single_put_max:  # unsized, and small after all
                return self._put_whole(spool.read(), reader, key, content_type)
            self._s3.upload_fileobj(
                spool,
                self._bucket,
                key,
                ExtraArgs={
                    "ChecksumAlgorithm": "SHA256",
                    "ContentType": content_type,
                    "Metadata": {"sha256": reader.hexdigest()},
                },
                Config=self._upload,
            )
        self._verify(key, reader)
        return self._stored(key, reader, content_type)

    def _stored(self, key: str, reader: HashingReader, content_type: str) -> VideoObject:
        return VideoObject(
            bucket=self._bucket,
            key=key,
            uri=f"s3://{self._bucket}/{key}",
            size=reader.size,
            sha256=reader.hexdigest(),
            content_type=content_type,
        )

    def _verify(self, key: str, reader: HashingReader) -> None:
        """The archived object is the download, checked by S3's own SHA-256 of what it holds
        (of its parts' digests, for an object uploaded in parts). A check that could be skipped
        would be no check: no checksum is a failure too."""
        head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        if head["ContentLength"] != reader.size:
            raise IncompleteDownload(f"archived {head['ContentLength']} bytes, downloaded {reader.size}")
        stored = head.get("ChecksumSHA256")
        if not stored:
            raise IncompleteDownload("S3 stated no SHA-256 of the archived object: it cannot be verified")
        if stored.split("-")[0] not in reader.s3_checksums():  # "-N": an object of N parts
            raise IncompleteDownload("S3's SHA-256 of the archived object differs from the download's")


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

    def fetch(self, uri: str) -> ReferenceFile:
        problem = self.problem(uri)
        if problem:
            raise InvalidReference(problem)
        if uri.startswith("s3://"):
            return self._from_s3(uri)
        try:
            return self._from_https(uri)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, UnicodeError) as error:
            # request.reference_problem lets no such address through; should one slip past it,
            # it is still the user's to fix, never a retry.
            raise InvalidReference(f"is not a valid address ({error})") from error

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


def _announced_size(response: httpx.Response) -> int | None:
    """The body's size as stored, when the server states it: Content-Length counts the bytes
    on the wire, which are the stored bytes only when the body is not content-encoded (a
    server may encode despite our asking for identity; httpx then decodes it)."""
    if response.headers.get("content-encoding", "identity").strip().lower() not in {"", "identity"}:
        return None
    length = response.headers.get("content-length", "")
    return int(length) if length.strip().isdigit() else None


def _thumbnail_type(header: str, url: str) -> str:
    """The thumbnail's image type: as served, or else as its address's extension says."""
    stated = header.split(";")[0].strip().lower()
    if stated == "image/jpg":
        stated = "image/jpeg"
    if stated not in THUMBNAIL_EXTENSIONS:
        stated = _guess_type(urlsplit(url).path)
    if stated not in THUMBNAIL_EXTENSIONS:
        raise ValueError(f"the thumbnail is not a JPEG, PNG or WebP image ({header or 'no content type'})")
    return stated


def _filename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "reference"


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
