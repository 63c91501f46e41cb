import pytest

from sora_relay.domain.provider import GenerationRecord, full_media_type

URL = "https://cdn.geminigen.ai/v.mp4"


def read(raw: dict[str, object]) -> GenerationRecord:
    return GenerationRecord.model_validate(raw)


def test_documented_submit_answer_is_read() -> None:
    record = read(
        {
            "id": 67890,
            "uuid": "sora_xyz789abc123",
            "status": 1,
            "status_percentage": 25,
            "error_code": "",
            "expired_at": "2025-11-28T14:35:15.573Z",
            "estimated_credit": 75,
            "media_type": "video/mp4",
        }
    )
    assert (record.uuid, record.id, record.status, record.estimated_credit) == ("sora_xyz789abc123", 67890, 1, 75)
    assert record.expired_at.isoformat() == "2025-11-28T14:35:15.573000+00:00"
    assert record.error_code is None


@pytest.mark.parametrize("wrapper", ["data", "result"])
def test_wrapped_record_is_unwrapped(wrapper: str) -> None:
    assert read({wrapper: {"uuid": "u", "status": 2, "video_url": URL}}).ready


@pytest.mark.parametrize(
    "raw",
    [
        {"generated_video": [{"video_url": URL}], "video_url": "https://other/x.mp4"},
        {"video_url": URL, "media_url": "https://other/x.mp4"},
        {"media_url": URL, "generate_result": "https://other/x.mp4"},
        {"generate_result": URL},
    ],
)
def test_video_address_is_taken_from_the_first_place_that_has_one(raw: dict[str, object]) -> None:
    assert read({"uuid": "u", "status": 2, **raw}).video_url == URL


def test_status_2_without_an_address_is_not_ready() -> None:
    assert not read({"uuid": "u", "status": 2}).ready


@pytest.mark.parametrize("status", ["processing", None, 2.5, True, "7"])
def test_unreadable_or_unknown_status_is_neither_ready_nor_failed(status: object) -> None:
    record = read({"uuid": "u", "status": status, "video_url": URL})
    assert not record.ready
    assert not record.failed


def test_numeric_string_status_is_read_as_a_number() -> None:
    assert read({"uuid": "u", "status": "3"}).failed


def test_unreadable_expiry_is_unknown() -> None:
    assert read({"uuid": "u", "expired_at": "next week"}).expired_at is None


@pytest.mark.parametrize(
    ("stated", "read"),
    [(25, 25), ("25", 25), (12.5, 12.5), ("0", 0), ("", None), ("n/a", None), (-3, None), (True, None)],
)
def test_used_credit_is_read_when_it_is_a_number_and_ignored_otherwise(stated: object, read: object) -> None:
    record = GenerationRecord.model_validate({"uuid": "sora_1", "status": 2, "used_credit": stated})
    assert record.used_credit == read


def test_unreadable_estimate_does_not_make_the_record_unreadable() -> None:
    record = GenerationRecord.model_validate({"uuid": "sora_1", "status": 1, "estimated_credit": {"credits": 30}})
    assert (record.status, record.estimated_credit) == (1, None)


@pytest.mark.parametrize(
    ("stated", "read"),
    [("https://cdn.geminigen.ai/t.jpg", "https://cdn.geminigen.ai/t.jpg"), ("", None), ("t.jpg", None), (7, None)],
)
def test_thumbnail_url_is_read_only_when_it_is_an_address(stated: object, read: object) -> None:
    record = GenerationRecord.model_validate({"data": {"uuid": "sora_1", "status": 2, "thumbnail_url": stated}})
    assert record.thumbnail_url == read


@pytest.mark.parametrize("status", [-1, -2, "-2"])
def test_negative_status_is_a_failure(status) -> None:
    assert read({"uuid": "u", "status": status, "error_code": "PUBLIC_ERROR_POLICY"}).failed


def test_queued_status_is_neither_failed_nor_ready() -> None:
    record = read({"uuid": "u", "status": 0})
    assert (record.status, record.failed, record.ready) == (0, False, False)


def test_address_behind_a_bogus_host_is_read_as_the_embedded_one() -> None:
    record = read({"uuid": "u", "status": 2, "generated_video": [{"video_url": "https://s3.example.com/" + URL}]})
    assert record.video_url == URL


def test_settings_stated_on_the_video_are_the_records() -> None:
    video = {"video_url": URL, "duration": 15, "resolution": "large", "aspect_ratio": "portrait"}
    record = read({"uuid": "u", "status": 2, "generated_video": [video]})
    assert (record.duration, record.resolution, record.aspect_ratio) == (15, "large", "portrait")


@pytest.mark.parametrize(
    ("stated", "media_type"),
    [
        ("video/mp4", "video/mp4"),
        ("video/MP4; codecs=avc1", "video/mp4"),
        ("video", None),
        ("application/octet-stream", None),
        (None, None),
        ("", None),
    ],
)
def test_only_a_full_media_type_is_stated_as_the_objects(stated, media_type) -> None:
    assert full_media_type(stated) == media_type
