"""Downloads over https from hosts no DNS server knows: each connection goes to the address
the policy vetted, with the certificate checked for the host name."""

import gzip
import socket
import time
from collections.abc import Iterator

import boto3
import pytest

from sora_relay.adapters.media.archive import S3VideoArchive
from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.media.hashing import IncompleteDownload
from sora_relay.adapters.media.policy import MediaPolicy, ReferencePolicy
from sora_relay.adapters.media.references import ReferenceFetcher
from sora_relay.domain.ports import InvalidReference, MediaNotAllowed, ReferenceUnavailable

from ..support.https_origin import Answer, HttpsOrigin

LOOPBACK = "127.0.0.1"
VIDEO = bytes(range(256)) * 4096  # 1 MiB that gzip shrinks a lot


def loopback_is_public(address: str) -> bool:
    return address == LOOPBACK


class Rebinding:
    """Answers `first` to the first `checks` lookups, then `then` to every later one."""

    def __init__(self, first: str, then: str, checks: int = 1) -> None:
        self.answers: Iterator[str] = iter([first] * checks)
        self.then = then
        self.lookups = 0

    def __call__(self, host: str) -> list[str]:
        self.lookups += 1
        return [next(self.answers, self.then)]


def reference_fetcher(origin: HttpsOrigin, resolver=lambda host: [LOOPBACK]) -> ReferenceFetcher:  # type: ignore[no-untyped-def]
    policy = ReferencePolicy(frozenset(), ("*.test",), resolver, public=loopback_is_public)
    client = vetted_client(policy, verify=origin.client_ssl())
    return ReferenceFetcher(boto3.client("s3", region_name="us-east-1"), client, policy, max_bytes=1024)


def video_archive(stack, origin: HttpsOrigin, resolver=lambda host: [LOOPBACK]) -> S3VideoArchive:  # type: ignore[no-untyped-def]
    policy = MediaPolicy(("*.test",), "https://api.geminigen.ai", resolver, public=loopback_is_public)
    return S3VideoArchive(boto3.client("s3"), vetted_client(policy, verify=origin.client_ssl()), stack.bucket)


def test_https_reference_is_read_from_the_vetted_address_with_the_host_named(https_origin) -> None:
    https_origin.answers["/style.png"] = Answer(body=b"\x89PNG", content_type="image/png")
    file = reference_fetcher(https_origin).fetch(https_origin.url("images.test", "/style.png"), 60.0)
    assert (file.filename, file.content_type, file.content) == ("style.png", "image/png", b"\x89PNG")
    assert https_origin.seen[0].host == f"images.test:{https_origin.port}"


def test_host_that_rebinds_to_a_private_address_after_the_check_is_refused(https_origin) -> None:
    https_origin.answers["/style.png"] = Answer(body=b"\x89PNG")
    # Two checks pass: the fetcher's own, before any credit is reserved, and the request's.
    resolver = Rebinding(first=LOOPBACK, then="10.0.0.7", checks=2)
    with pytest.raises(InvalidReference, match=r"non-public address \(10\.0\.0\.7\)"):
        reference_fetcher(https_origin, resolver).fetch(https_origin.url("images.test", "/style.png"), 60.0)
    assert https_origin.seen == []


def test_missing_https_reference_is_invalid(https_origin) -> None:
    with pytest.raises(InvalidReference, match="answered HTTP 404"):
        reference_fetcher(https_origin).fetch(https_origin.url("images.test", "/gone.png"), 60.0)


def test_oversized_https_reference_is_invalid(https_origin) -> None:
    https_origin.answers["/big.png"] = Answer(body=b"x" * 2048)
    with pytest.raises(InvalidReference, match="larger than 1024 bytes"):
        reference_fetcher(https_origin).fetch(https_origin.url("images.test", "/big.png"), 60.0)


def test_https_reference_answering_503_is_worth_another_try(https_origin) -> None:
    https_origin.answers["/busy.png"] = Answer(status=503)
    with pytest.raises(ReferenceUnavailable):
        reference_fetcher(https_origin).fetch(https_origin.url("images.test", "/busy.png"), 60.0)


def test_https_reference_on_a_host_not_allowed_is_invalid_without_a_request(https_origin) -> None:
    with pytest.raises(InvalidReference, match="not in the allowed hosts"):
        reference_fetcher(https_origin).fetch(f"https://images.example:{https_origin.port}/x.png", 60.0)
    assert https_origin.seen == []


def test_video_download_asks_for_the_bytes_unencoded(stack, https_origin) -> None:
    https_origin.answers["/v.mp4"] = Answer(body=VIDEO, content_type="video/mp4")
    stored = (
        video_archive(stack, https_origin)
        .copy(https_origin.url("cdn.test", "/v.mp4"), "v.mp4", "video/mp4", 600.0)
        .video
    )
    assert https_origin.seen[0].accept_encoding == "identity"
    assert stored.size == len(VIDEO)


def test_video_gzipped_by_the_cdn_anyway_is_stored_decoded_and_counted_as_stored(stack, https_origin) -> None:
    https_origin.answers["/v.mp4"] = Answer(body=VIDEO, content_type="video/mp4", gzip=True)
    assert len(gzip.compress(VIDEO)) < len(VIDEO)
    stored = (
        video_archive(stack, https_origin)
        .copy(https_origin.url("cdn.test", "/v.mp4"), "v.mp4", "video/mp4", 600.0)
        .video
    )
    assert stored.size == len(VIDEO)
    assert stack.s3.get_object(Bucket=stack.bucket, Key="v.mp4")["Body"].read() == VIDEO


def test_video_host_that_rebinds_to_a_private_address_is_not_downloaded(stack, https_origin) -> None:
    https_origin.answers["/v.mp4"] = Answer(body=VIDEO)
    archive = video_archive(stack, https_origin, Rebinding(first=LOOPBACK, then="169.254.169.254"))
    with pytest.raises(MediaNotAllowed, match="non-public address"):
        archive.copy(https_origin.url("cdn.test", "/v.mp4"), "v.mp4", "video/mp4", 600.0)
    assert https_origin.seen == []


def test_https_reference_whose_lookup_fails_is_worth_another_try(https_origin) -> None:
    def failing(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(ReferenceUnavailable):
        reference_fetcher(https_origin, failing).fetch(https_origin.url("images.test", "/style.png"), 60.0)


@pytest.mark.parametrize("pause", [0.1, 5.0], ids=["bytes-coming-slowly", "a-byte-now-and-then"])
def test_reference_that_trickles_is_cut_off_at_its_whole_deadline(https_origin, pause: float) -> None:
    # Whole, it would take 20 s or more: cut off at 1 s, with room for a loaded machine.
    https_origin.answers["/slow.png"] = Answer(body=b"\x89PNG" + bytes(200), trickle=pause)
    started = time.monotonic()
    with pytest.raises(ReferenceUnavailable, match="not read within 1 seconds"):
        reference_fetcher(https_origin).fetch(https_origin.url("images.test", "/slow.png"), 1.0)
    assert time.monotonic() - started < 5


def test_video_that_trickles_is_cut_off_at_its_whole_deadline(stack, https_origin) -> None:
    https_origin.answers["/slow.mp4"] = Answer(body=VIDEO[:400], trickle=0.05)  # 20 s whole
    started = time.monotonic()
    archive = video_archive(stack, https_origin)
    with pytest.raises(IncompleteDownload, match="not read within 1 s"):
        archive.copy(https_origin.url("cdn.test", "/slow.mp4"), "v.mp4", "video/mp4", 1.0)
    assert time.monotonic() - started < 5
