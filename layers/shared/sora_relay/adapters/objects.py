"""The archive bucket as the HTTP API uses it: uploaded references in, short-lived addresses of
archived videos out, and their removal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# How long a download address works: long enough to start the download, short enough not to share.
DOWNLOAD_URL_SECONDS = 300


class S3Objects:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def put_input(self, uri: str, data: bytes, content_type: str) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, ChecksumAlgorithm="SHA256")

    def download_url(self, bucket: str, key: str) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=DOWNLOAD_URL_SECONDS
        )

    def remove(self, bucket: str, keys: list[str]) -> None:
        for key in keys:
            self._client.delete_object(Bucket=bucket, Key=key)
