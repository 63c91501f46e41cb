import base64
import hashlib

import pytest

from sora_relay.adapters.media.hashing import HashingReader, IncompleteDownload


def test_chunks_pass_through_as_they_come_and_the_whole_is_hashed() -> None:
    reader = HashingReader(iter([b"abc", b"defg", b"h"]), expected_size=8)
    assert list(reader.chunks()) == [b"abc", b"defg", b"h"]
    assert reader.hexdigest() == hashlib.sha256(b"abcdefgh").hexdigest()
    assert reader.size == 8


def test_body_shorter_than_announced_fails_at_its_end() -> None:
    chunks = HashingReader(iter([b"abc"]), expected_size=5).chunks()
    assert next(chunks) == b"abc"
    with pytest.raises(IncompleteDownload, match="3 of 5"):
        next(chunks)


def test_body_longer_than_announced_fails() -> None:
    with pytest.raises(IncompleteDownload, match="more than the 2 bytes announced"):
        HashingReader(iter([b"abc"]), expected_size=2).read_whole()


def test_announced_size_over_the_cap_is_refused_before_reading() -> None:
    with pytest.raises(IncompleteDownload, match="more than the 4 allowed"):
        HashingReader(iter([]), expected_size=5, max_size=4)


def test_unannounced_body_over_the_cap_fails() -> None:
    with pytest.raises(IncompleteDownload, match="more than the 4 bytes allowed"):
        HashingReader(iter([b"abc", b"de"]), expected_size=None, max_size=4).read_whole()


def test_checksums_are_of_the_whole_and_of_its_parts() -> None:
    reader = HashingReader(iter([b"abcd", b"efg"]), expected_size=7, part_size=3)
    reader.read_whole()
    parts = b"".join(hashlib.sha256(part).digest() for part in (b"abc", b"def", b"g"))
    whole = base64.b64encode(hashlib.sha256(b"abcdefg").digest()).decode()
    assert reader.s3_checksums() == {whole, base64.b64encode(hashlib.sha256(parts).digest()).decode()}


def test_checksum_without_parts_is_of_the_whole() -> None:
    reader = HashingReader(iter([b"abc"]), expected_size=3)
    reader.read_whole()
    assert reader.s3_checksums() == {base64.b64encode(hashlib.sha256(b"abc").digest()).decode()}


def test_whole_body_is_read_at_once_and_hashed() -> None:
    reader = HashingReader(iter([b"abc", b"defg"]), expected_size=7)
    assert reader.read_whole() == b"abcdefg"
    assert reader.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()


def test_whole_body_shorter_than_announced_fails() -> None:
    with pytest.raises(IncompleteDownload, match="3 of 5"):
        HashingReader(iter([b"abc"]), expected_size=5).read_whole()
