"""What a downloaded file is called and what type it is, when its server does not say."""

import mimetypes


def filename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "reference"


def guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# ISO base media brands that are QuickTime rather than MP4.
_QUICKTIME_BRANDS = {b"qt  "}


def sniff_video_type(head: bytes) -> str:
    """A video's type from its first bytes, for a provider that does not state it (its CDN
    serves every file as application/octet-stream): an ISO base media file (`ftyp` at byte 4)
    is an MP4 unless its brand says QuickTime; a Matroska/EBML header is WebM."""
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] in _QUICKTIME_BRANDS else "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return "application/octet-stream"
