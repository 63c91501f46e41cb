"""An API call's body read: JSON, or a multipart form with files, and a clear 400 or 413 for one
that cannot be read."""

import base64

import pytest

from sora_relay.adapters.http_bodies import MAX_BODY_BYTES, read_body
from sora_relay.domain.videos import ApiError

BOUNDARY = "b0undary"
FORM = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na fox\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata[order]"\r\n\r\n7781\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="input_reference"; filename="fox.png"\r\n'
    "Content-Type: image/png\r\n\r\n\x89PNG\r\n"
    f"--{BOUNDARY}--\r\n"
).encode("latin-1")


def test_a_json_body_reads_as_its_fields() -> None:
    assert read_body('{"prompt": "a fox"}', False, "application/json") == ({"prompt": "a fox"}, [])


def test_a_multipart_form_reads_as_fields_and_files() -> None:
    fields, uploads = read_body(base64.b64encode(FORM).decode(), True, f"multipart/form-data; boundary={BOUNDARY}")
    assert fields == {"prompt": "a fox", "metadata": {"order": "7781"}}
    [upload] = uploads
    assert (upload.filename, upload.content_type, upload.data) == ("fox.png", "image/png", b"\x89PNG")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ("[1, 2]", "application/json", "a JSON object"),
        ("--x\r\nnothing", "multipart/form-data", "multipart body could not be read"),
    ],
)
def test_a_body_that_cannot_be_read_is_a_400_saying_why(body: str, content_type: str, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        read_body(body, False, content_type)
    assert refused.value.status == 400
    assert says in refused.value.message


def test_a_body_above_api_gateways_bound_is_a_413() -> None:
    with pytest.raises(ApiError) as refused:
        read_body("x" * (MAX_BODY_BYTES + 1), False, "application/json")
    assert refused.value.status == 413
