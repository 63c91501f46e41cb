"""A thumbnail copied over https from an allowed host into S3, named for its image type."""

import boto3
import pytest

from sora_relay.adapters.media.archive import MAX_THUMBNAIL_BYTES, S3VideoArchive
from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.media.hashing import IncompleteDownload
from sora_relay.adapters.media.policy import MediaPolicy
from sora_relay.domain.ports import MediaNotAllowed

from ..support.https_origin import Answer, HttpsOrigin

LOOPBACK = "127.0.0.1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


def archive(stack, origin: HttpsOrigin, allowed: str = "*.test") -> S3VideoArchive:
    policy = MediaPolicy((allowed,), "https://api.geminigen.ai", lambda host: [LOOPBACK], public=lambda a: True)
    return S3VideoArchive(boto3.client("s3"), vetted_client(policy, verify=origin.client_ssl()), stack.bucket)


def test_thumbnail_is_stored_with_the_bytes_served_under_its_type_extension(stack, https_origin) -> None:
    https_origin.answers["/t/1"] = Answer(body=JPEG, content_type="image/jpeg")
    url = https_origin.url("cdn.test", "/t/1")
    thumbnail = archive(stack, https_origin).copy_thumbnail(url, "videos/ad-1.thumbnail", within=20)
    assert thumbnail.key == "videos/ad-1.thumbnail.jpg"
    assert (thumbnail.size, thumbnail.content_type) == (len(JPEG), "image/jpeg")
    stored = stack.s3.get_object(Bucket=stack.bucket, Key="videos/ad-1.thumbnail.jpg")
    assert stored["Body"].read() == JPEG
    assert stored["ContentType"] == "image/jpeg"


def test_thumbnail_served_as_octet_stream_is_typed_by_its_address(stack, https_origin) -> None:
    https_origin.answers["/t/1.webp"] = Answer(body=b"RIFF....WEBP", content_type="application/octet-stream")
    url = https_origin.url("cdn.test", "/t/1.webp")
    thumbnail = archive(stack, https_origin).copy_thumbnail(url, "videos/ad-1.thumbnail", within=20)
    assert (thumbnail.key, thumbnail.content_type) == ("videos/ad-1.thumbnail.webp", "image/webp")


def test_thumbnail_that_is_not_an_image_is_not_stored(stack, https_origin) -> None:
    https_origin.answers["/t/1"] = Answer(body=b"<html>", content_type="text/html")
    with pytest.raises(ValueError, match="not a JPEG, PNG or WebP"):
        archive(stack, https_origin).copy_thumbnail(https_origin.url("cdn.test", "/t/1"), "videos/a.thumbnail", 20)
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.bucket)


def test_thumbnail_larger_than_a_still_can_be_is_not_stored(stack, https_origin) -> None:
    https_origin.answers["/t/1"] = Answer(body=b"\xff" * (MAX_THUMBNAIL_BYTES + 1), content_type="image/jpeg")
    with pytest.raises(IncompleteDownload, match="larger than"):
        archive(stack, https_origin).copy_thumbnail(https_origin.url("cdn.test", "/t/1"), "videos/a.thumbnail", 20)
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.bucket)


def test_thumbnail_on_a_host_not_allowed_is_not_downloaded(stack, https_origin) -> None:
    https_origin.answers["/t/1"] = Answer(body=JPEG, content_type="image/jpeg")
    with pytest.raises(MediaNotAllowed):
        archive(stack, https_origin, allowed="*.geminigen.ai").copy_thumbnail(
            https_origin.url("cdn.test", "/t/1"), "videos/a.thumbnail", 20
        )
    assert https_origin.seen == []
