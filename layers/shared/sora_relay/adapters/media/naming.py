"""What a downloaded file is called and what type it is, when its server does not say."""

import mimetypes


def filename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "reference"


def guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
