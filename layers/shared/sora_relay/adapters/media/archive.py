"""Finished videos (and their thumbnails) streamed from the provider's address into S3, each
object verified against S3's own SHA-256 of what it holds."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from boto3.s3.transfer import TransferConfig

from sora_relay.adapters.media.hashing import DOWNLOAD_CHUNK, HashingReader, IncompleteDownload
from sora_relay.adapters.media.naming import guess_type, sniff_video_type
from sora_relay.domain.events import ThumbnailObject, VideoObject
from sora_relay.domain.ports import ArchivedVideo, MediaGone

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Up to this size (announced), a video is held in memory and written with one PutObject; the
# join holds it twice at most, so the archiver's peak stays under 256 MiB (1024 MB function).
# Sora's videos are tens of MiB: nearly all take this path.
SINGLE_PUT_MAX = 64 * 1024**2
# A video's still: anything larger is not one.
MAX_THUMBNAIL_BYTES = 10 * 1024**2
# The image types a thumbnail may have (docs/contract.md, "The archived video"), and the extension each gets.
THUMBNAIL_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_GONE = {403, 404, 410}
# The longest wait for one read of a download (the whole has its own deadline).
_LONGEST_READ = 30.0


def _nothing() -> None:
    return None


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

    def copy(
        self, url: str, key: str, content_type: str | None, within: float, keep_alive: Callable[[], None] = _nothing
    ) -> ArchivedVideo:
        """`content_type` None: the type the file's own first bytes show. The download ends within
        `within` seconds (httpx's timeouts bound each read: the whole is checked between reads);
        `keep_alive` is called as each read arrives."""
        deadline = time.monotonic() + within
        read = max(min(within, _LONGEST_READ), 1.0)
        with self._http.stream("GET", url, timeout=httpx.Timeout(read, connect=min(read, 10.0))) as response:
            if response.status_code in _GONE:
                raise MediaGone(f"the video's address answered HTTP {response.status_code}")
            response.raise_for_status()
            size = _announced_size(response)
            # As each read arrives (not gathered into larger chunks), so the deadline is checked often.
            chunks = _by(deadline, within, response.iter_bytes(), keep_alive)
            if size is not None and size <= self._single_put_max:
                reader = HashingReader(chunks, size)
                body = reader.read_whole()
                stored = self._put_whole(body, reader, key, content_type or sniff_video_type(body[:16]))
            else:
                reader, stored = self._put_spooled(chunks, size, key, content_type)
            return ArchivedVideo(stored, reader.probe.facts())

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

    def _put_spooled(
        self, chunks: Iterator[bytes], size: int | None, key: str, content_type: str | None
    ) -> tuple[HashingReader, VideoObject]:
        """Too large to hold in memory, or of unknown size: written to the function's ephemeral
        storage as it downloads (and hashed), then uploaded from there with its SHA-256 already
        in the metadata: one multipart upload, parts read and sent in parallel, each checked by
        S3; the key appears only when it completes. No staging object, no server-side copy.
        The file is unlinked from the start: it goes with the process, whatever happens."""
        part_size = self._upload.multipart_chunksize  # the parts S3's checksum of parts is of
        reader = HashingReader(chunks, size, part_size=part_size)
        with tempfile.TemporaryFile() as spool:
            for chunk in reader.chunks():
                spool.write(chunk)
            spool.seek(0)
            content_type = content_type or sniff_video_type(spool.read(16))
            spool.seek(0)
            if reader.size <= self._single_put_max:  # unsized, and small after all
                return reader, self._put_whole(spool.read(), reader, key, content_type)
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
        return reader, self._stored(key, reader, content_type)

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


def _by(deadline: float, within: float, chunks: Iterator[bytes], keep_alive: Callable[[], None]) -> Iterator[bytes]:
    """The chunks, as long as they come before the deadline."""
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise IncompleteDownload(f"the video was not read within {within:.0f} s")
        keep_alive()
        yield chunk


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
        stated = guess_type(urlsplit(url).path)
    if stated not in THUMBNAIL_EXTENSIONS:
        raise ValueError(f"the thumbnail is not a JPEG, PNG or WebP image ({header or 'no content type'})")
    return stated
