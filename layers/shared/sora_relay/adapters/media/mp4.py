"""What an MP4 says of itself: its duration, width and height, read from its `moov` box as the
file streams past, wherever the box lies (first, as a web-ready file has it, or after the media).

Written here because no small, kept library reads an MP4 from a stream in one pass: the boxes
are walked as they come, the media (`mdat`) is passed over unread, and only `moov` is kept."""

from __future__ import annotations

import struct

from sora_relay.domain.delivered import VideoFacts

# A `moov` larger than this is not a video the relay asked for (a 30 s video's is tens of KiB).
MAX_MOOV_BYTES = 8 * 1024 * 1024
_CONTAINERS = {b"trak", b"mdia", b"minf"}  # the boxes inside `moov` that lead to what is read


class Mp4Probe:
    """Fed a file's bytes in order; `facts()` then says what its `moov` states (None when the
    file is not an MP4 this can read: facts are best effort and never fail a copy)."""

    def __init__(self) -> None:
        self._pending = b""  # bytes of a top-level box header not complete yet
        self._skip = 0  # bytes of the current box still to pass over
        self._moov: bytearray | None = None
        self._moov_left = 0
        self._done = False
        self._broken = False

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view and not (self._done or self._broken):
            if self._moov is not None:
                take = min(len(view), self._moov_left)
                self._moov += view[:take]
                self._moov_left -= take
                view = view[take:]
                self._done = self._moov_left == 0
            elif self._skip:
                take = min(len(view), self._skip)
                self._skip -= take
                view = view[take:]
            else:
                view = self._header(view)

    def _header(self, view: memoryview) -> memoryview:
        """Read the next top-level box's header from `view`; what of `view` is left after it."""
        data = self._pending + bytes(view[: 16 - len(self._pending)])
        if len(data) < 8:
            self._pending = data
            return view[len(view) :]
        size, kind = struct.unpack(">I4s", data[:8])
        header = 8
        if size == 1:
            if len(data) < 16:
                self._pending = data
                return view[len(view) :]
            size, header = struct.unpack(">Q", data[8:16])[0], 16
        if size < header or (size == 0 and kind != b"mdat"):
            self._broken = True  # a box that runs to the file's end, or no box at all: not readable here
            return view[len(view) :]
        used = header - len(self._pending)
        self._pending = b""
        if kind == b"moov":
            if size - header > MAX_MOOV_BYTES:
                self._broken = True
            self._moov, self._moov_left = bytearray(), size - header
        else:
            self._skip = size - header if size else 0
            self._broken = self._broken or size == 0  # `mdat` to the end: a `moov` never follows
        return view[used:]

    def facts(self) -> VideoFacts | None:
        if not self._done or self._moov is None:
            return None
        try:
            return _read_moov(bytes(self._moov))
        except (struct.error, ValueError, ZeroDivisionError):
            return None


def _read_moov(moov: bytes) -> VideoFacts | None:
    duration = None
    width = height = 0
    for kind, body in _boxes(moov):
        if kind == b"mvhd":
            version = body[0]
            timescale, length = struct.unpack(">IQ", body[20:32]) if version == 1 else struct.unpack(">II", body[12:20])
            duration = round(length / timescale, 3)
        elif kind == b"trak" and not width:
            width, height = _track_size(body)
    if duration is None and not width:
        return None
    return VideoFacts(duration_seconds=duration, width=width or None, height=height or None)


def _track_size(trak: bytes) -> tuple[int, int]:
    """A video track's width and height (its `tkhd`'s, 16.16 fixed point); 0, 0 for a track of sound."""
    for kind, body in _boxes(trak):
        if kind == b"tkhd":
            at = 88 if body[0] == 1 else 76
            width, height = struct.unpack(">II", body[at : at + 8])
            return width >> 16, height >> 16
    return 0, 0


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The boxes of one level, each with its body; descends into `_CONTAINERS` but `trak`."""
    found = []
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        if size < header or at + size > len(data):
            break
        body = data[at + header : at + size]
        found.append((kind, body))
        if kind in _CONTAINERS - {b"trak"}:
            found += _boxes(body)
        at += size
    return found
