"""A download counted and hashed as it passes, its length checked against what was announced."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx

from sora_relay.adapters.media.mp4 import Mp4Probe

DOWNLOAD_CHUNK = 1024 * 1024
# A 15-second 1080p video is tens of MiB: anything near this is not a video we asked for.
# It also fits, whole, in the archive function's ephemeral storage (10 GiB), where a video
# above SINGLE_PUT_MAX is spooled.
MAX_VIDEO_BYTES = 8 * 1024**3


class IncompleteDownload(Exception):
    """The body ended before (or ran past) the length the server announced, or past the cap."""


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
        self.probe = Mp4Probe()  # what the file says of itself, read as it passes

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
        self.probe.feed(chunk)
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
