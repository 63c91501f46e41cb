"""The simulator's videos: its bundled MP4, restated for each generation as made (its duration,
width and height in the file's own `moov`), and, for some, with the `moov` after the media, as
files not prepared for the web have it."""

from __future__ import annotations

import functools
import struct
from importlib.resources import files

SAMPLE_MP4 = files("sora_relay_tools.simulator").joinpath("sample.mp4").read_bytes()
# The short side of each resolution word the families use (a Kling mode's, too).
_SHORT_SIDE = {"480p": 480, "720p": 720, "small": 720, "1080p": 1080, "large": 1080, "professional": 1080}
_NAMED_RATIOS = {"landscape": (16, 9), "portrait": (9, 16), "square": (1, 1)}


def frame_size(settings: dict[str, str]) -> tuple[int, int]:
    """The width and height a generation made with `settings` has."""
    short = _SHORT_SIDE.get(settings.get("resolution", ""), _SHORT_SIDE.get(settings.get("mode", ""), 720))
    word = settings.get("aspect_ratio", "16:9")
    across, down = _NAMED_RATIOS.get(word) or tuple(int(part) for part in word.split(":"))
    if across >= down:
        return 2 * round(short * across / down / 2), short
    return short, 2 * round(short * down / across / 2)


@functools.cache  # a download asks for its size, then its bytes: one file made per generation
def made_video(width: int, height: int, seconds: float, *, moov_last: bool = False) -> bytes:
    """The bundled MP4, its `moov` stating `seconds`, `width` and `height` (and, `moov_last`,
    moved after the media, its chunk offsets moved with it)."""
    data = bytearray(SAMPLE_MP4)
    boxes = dict(_walk(bytes(data)))
    mvhd, tkhd = boxes[b"moov/mvhd"], boxes[b"moov/trak/tkhd"]
    timescale = struct.unpack(">I", data[mvhd + 20 : mvhd + 24])[0]
    struct.pack_into(">I", data, mvhd + 24, round(seconds * timescale))
    struct.pack_into(">II", data, tkhd + 84, width << 16, height << 16)
    if not moov_last:
        return bytes(data)
    moov, mdat = boxes[b"moov"], boxes[b"mdat"]
    moov_size = struct.unpack(">I", data[moov : moov + 4])[0]
    stco = boxes[b"moov/trak/mdia/minf/stbl/stco"]
    count = struct.unpack(">I", data[stco + 12 : stco + 16])[0]
    for entry in range(count):  # the media moves up by the moov's size
        at = stco + 16 + 4 * entry
        struct.pack_into(">I", data, at, struct.unpack(">I", data[at : at + 4])[0] - moov_size)
    assert moov < mdat
    return bytes(data[:moov] + data[moov + moov_size :] + data[moov : moov + moov_size])


def _walk(data: bytes, start: int = 0, end: int | None = None, path: bytes = b"") -> list[tuple[bytes, int]]:
    """Each box's path and offset (the bundled file's boxes all have 32-bit sizes)."""
    found = []
    at, end = start, len(data) if end is None else end
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        name = path + kind
        found.append((name, at))
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            found += _walk(data, at + 8, at + size, name + b"/")
        at += size
    return found
