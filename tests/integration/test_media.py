import base64
import hashlib

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from sora_relay.adapters.media.archive import S3VideoArchive
from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.media.hashing import IncompleteDownload
from sora_relay.adapters.media.policy import MediaPolicy, ReferencePolicy
from sora_relay.adapters.media.references import ReferenceFetcher
from sora_relay.domain.ports import InvalidReference, MediaGone, MediaNotAllowed, ReferenceUnavailable
from sora_relay_tools.simulator import Fault, GeminiGenSimulator

MIB = 1024 * 1024


def finished(simulator: GeminiGenSimulator) -> tuple[str, bytes]:
    """A finished generation's address and its bytes."""
    generation = simulator._submit({"prompt": "a fox"}, [])[1]
    url = f"{simulator.base_url}/media/{generation['uuid']}.mp4"
    return url, simulator.video_bytes(simulator.generations[generation["uuid"]])


@pytest.fixture
def archive(stack, simulator) -> S3VideoArchive:
    policy = MediaPolicy.parse("*.geminigen.ai", simulator.base_url)
    return S3VideoArchive(boto3.client("s3"), vetted_client(policy), stack.bucket, part_size=5 * MIB)


@pytest.fixture
def spooled_archive(stack, simulator) -> S3VideoArchive:
    """Every video through the spool and up in parts, as a video above SINGLE_PUT_MAX goes."""
    policy = MediaPolicy.parse("*.geminigen.ai", simulator.base_url)
    client = vetted_client(policy)
    return S3VideoArchive(boto3.client("s3"), client, stack.bucket, part_size=5 * MIB, single_put_max=0)


def s3_calls(archive: S3VideoArchive) -> list[str]:
    """The S3 operations the archive makes from now on, in order."""
    calls: list[str] = []
    archive._s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


def test_video_is_archived_byte_for_byte_with_its_sha256(stack, simulator, archive) -> None:
    url, content = finished(simulator)
    video = archive.copy(url, "videos/ad-1.mp4", "video/mp4", 600.0).video
    stored = stack.s3.get_object(Bucket=stack.bucket, Key="videos/ad-1.mp4")
    assert stored["Body"].read() == content
    assert content[4:8] == b"ftyp"  # the simulator's MP4, whole
    assert video.sha256 == hashlib.sha256(content).hexdigest()
    assert stored["Metadata"] == {"sha256": video.sha256}
    assert stored["ContentType"] == "video/mp4"
    assert video.size == len(content)


def test_video_of_typical_size_is_written_with_one_put(stack, simulator, archive) -> None:
    simulator.video_size = 12 * MIB
    url, content = finished(simulator)
    calls = s3_calls(archive)
    video = archive.copy(url, "videos/one.mp4", "video/mp4", 600.0).video
    assert calls == ["PutObject"]
    assert video.sha256 == hashlib.sha256(content).hexdigest()
    stored = stack.s3.get_object(Bucket=stack.bucket, Key="videos/one.mp4")
    assert (stored["Body"].read(), stored["Metadata"]) == (content, {"sha256": video.sha256})


def test_video_above_the_single_put_size_goes_up_in_parts_to_its_key_with_no_copy(stack, simulator) -> None:
    policy = MediaPolicy.parse("", simulator.base_url)
    archive = S3VideoArchive(
        boto3.client("s3"), vetted_client(policy), stack.bucket, part_size=5 * MIB, single_put_max=6 * MIB
    )
    simulator.video_size = 12 * MIB
    url, content = finished(simulator)
    calls = s3_calls(archive)
    video = archive.copy(url, "videos/parts.mp4", "video/mp4", 600.0).video
    assert calls == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
        "HeadObject",
    ]
    stored = stack.s3.get_object(Bucket=stack.bucket, Key="videos/parts.mp4")
    assert (stored["Body"].read(), stored["Metadata"]) == (content, {"sha256": video.sha256})
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 1


def test_put_that_states_no_checksum_is_not_taken_as_verified(stack, simulator, archive) -> None:
    archive._s3.meta.events.register("after-call.s3.PutObject", lambda parsed, **_: parsed.pop("ChecksumSHA256", None))
    url, _ = finished(simulator)
    with pytest.raises(IncompleteDownload, match="no SHA-256"):
        archive.copy(url, "videos/unchecked.mp4", "video/mp4", 600.0)


def test_put_whose_checksum_differs_is_not_taken_as_verified(stack, simulator, archive) -> None:
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    archive._s3.meta.events.register("after-call.s3.PutObject", lambda parsed, **_: parsed.update(ChecksumSHA256=other))
    url, _ = finished(simulator)
    with pytest.raises(IncompleteDownload, match="differs"):
        archive.copy(url, "videos/altered.mp4", "video/mp4", 600.0)


def test_large_video_goes_up_in_parts_each_checked_by_its_sha256(stack, simulator, spooled_archive) -> None:
    simulator.video_size = 12 * MIB
    url, content = finished(simulator)
    video = spooled_archive.copy(url, "videos/big.mp4", "video/mp4", 600.0).video
    assert video.sha256 == hashlib.sha256(content).hexdigest()
    head = stack.s3.head_object(Bucket=stack.bucket, Key="videos/big.mp4", ChecksumMode="ENABLED")
    assert head["ContentLength"] == 12 * MIB
    parts = b"".join(hashlib.sha256(content[at : at + 5 * MIB]).digest() for at in range(0, len(content), 5 * MIB))
    assert head["ChecksumSHA256"].split("-")[0] == base64.b64encode(hashlib.sha256(parts).digest()).decode()


def test_archived_object_without_a_checksum_is_not_taken_as_verified(stack, simulator, spooled_archive) -> None:
    """An S3 that states no SHA-256: the copy fails rather than pass unchecked."""
    archive = spooled_archive
    archive._s3.meta.events.register("after-call.s3.HeadObject", lambda parsed, **_: parsed.pop("ChecksumSHA256", None))
    url, _ = finished(simulator)
    with pytest.raises(IncompleteDownload, match="no SHA-256"):
        archive.copy(url, "videos/unchecked.mp4", "video/mp4", 600.0)


def test_archived_object_whose_checksum_differs_is_not_taken_as_verified(stack, simulator, spooled_archive) -> None:
    archive = spooled_archive
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    archive._s3.meta.events.register(
        "after-call.s3.HeadObject", lambda parsed, **_: parsed.update(ChecksumSHA256=other)
    )
    url, _ = finished(simulator)
    with pytest.raises(IncompleteDownload, match="differs"):
        archive.copy(url, "videos/altered.mp4", "video/mp4", 600.0)


def test_download_cut_short_in_the_spool_uploads_nothing(stack, simulator, spooled_archive) -> None:
    simulator.video_size = 12 * MIB
    url, _ = finished(simulator)
    simulator.inject("media", Fault(truncate_at=7 * MIB))
    calls = s3_calls(spooled_archive)
    with pytest.raises(IncompleteDownload, match="broke off"):
        spooled_archive.copy(url, "videos/cut.mp4", "video/mp4", 600.0)
    assert calls == []
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 0


def test_download_cut_short_leaves_no_object_and_no_open_upload(stack, simulator, archive) -> None:
    simulator.video_size = 12 * MIB
    url, _ = finished(simulator)
    simulator.inject("media", Fault(truncate_at=7 * MIB))
    with pytest.raises(IncompleteDownload, match="broke off"):
        archive.copy(url, "videos/cut.mp4", "video/mp4", 600.0)
    assert stack.s3.list_objects_v2(Bucket=stack.bucket)["KeyCount"] == 0
    assert stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", []) == []


def test_expired_address_is_gone(simulator, archive) -> None:
    simulator.expire_after = -simulator.expire_after
    url, _ = finished(simulator)
    with pytest.raises(MediaGone, match="410"):
        archive.copy(url, "videos/old.mp4", "video/mp4", 600.0)


def test_address_on_a_host_not_allowed_is_not_fetched(simulator, archive) -> None:
    before = len(simulator.requests)
    with pytest.raises(MediaNotAllowed, match="https"):
        archive.copy("http://localhost:1/media/x.mp4", "videos/x.mp4", "video/mp4", 600.0)
    assert len(simulator.requests) == before


@pytest.fixture
def references(stack) -> ReferenceFetcher:
    policy = ReferencePolicy.parse(stack.bucket, "*")
    return ReferenceFetcher(boto3.client("s3"), vetted_client(policy), policy, max_bytes=1024)


def test_s3_reference_is_read_with_its_type(stack, references) -> None:
    stack.s3.put_object(Bucket=stack.bucket, Key="in/ref.png", Body=b"\x89PNG", ContentType="image/png")
    file = references.fetch(f"s3://{stack.bucket}/in/ref.png", 60.0)
    assert (file.filename, file.content_type, file.content) == ("ref.png", "image/png", b"\x89PNG")


def test_missing_s3_reference_is_invalid(stack, references) -> None:
    with pytest.raises(InvalidReference, match="NoSuchKey"):
        references.fetch(f"s3://{stack.bucket}/in/missing.png", 60.0)


def test_oversized_s3_reference_is_invalid(stack, references) -> None:
    stack.s3.put_object(Bucket=stack.bucket, Key="in/big.png", Body=b"x" * 2048)
    with pytest.raises(InvalidReference, match="larger than 1024"):
        references.fetch(f"s3://{stack.bucket}/in/big.png", 60.0)


def test_s3_reference_whose_connection_fails_is_unavailable_not_a_crash(stack) -> None:
    s3 = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 1}))

    def reset(**_: object) -> None:
        raise ConnectionClosedError(endpoint_url="https://s3.amazonaws.com")

    s3.meta.events.register_first("before-send.s3.GetObject", reset)
    policy = ReferencePolicy.parse(stack.bucket, "*")
    fetcher = ReferenceFetcher(s3, vetted_client(policy), policy, max_bytes=1024)
    with pytest.raises(ReferenceUnavailable, match="ConnectionClosedError"):
        fetcher.fetch(f"s3://{stack.bucket}/in/ref.png", 60.0)


def test_s3_reference_not_read_within_its_deadline_is_unavailable(stack, references) -> None:
    stack.s3.put_object(Bucket=stack.bucket, Key="in/ref.png", Body=b"\x89PNG")
    with pytest.raises(ReferenceUnavailable, match="within"):
        references.fetch(f"s3://{stack.bucket}/in/ref.png", 1e-9)


def test_s3_reference_from_a_bucket_not_allowed_is_invalid_without_reading_it(references) -> None:
    with pytest.raises(InvalidReference, match="bucket someone-elses-bucket is not one"):
        references.fetch("s3://someone-elses-bucket/secret.png", 60.0)


def test_https_reference_on_loopback_is_refused(references, simulator) -> None:
    before = len(simulator.requests)
    with pytest.raises(InvalidReference, match="only https"):
        references.fetch(f"{simulator.base_url}/media/x.mp4", 60.0)
    assert len(simulator.requests) == before


@pytest.mark.parametrize("archive_kind", ["archive", "spooled_archive"])
def test_video_of_no_stated_type_is_stored_as_its_bytes_show(stack, simulator, archive_kind, request) -> None:
    url, _ = finished(simulator)  # served as application/octet-stream, as the provider's CDN does
    video = request.getfixturevalue(archive_kind).copy(url, "videos/ad-1.mp4", None, 600.0).video
    stored = stack.s3.head_object(Bucket=stack.bucket, Key="videos/ad-1.mp4")
    assert video.content_type == stored["ContentType"] == "video/mp4"
