"""An HTTP call's body as the API reads it: JSON, or a multipart form (the official SDK's
`videos.create` always sends one) whose `input_reference` parts are files.

The standard library's MIME parser reads the form: Powertools reads one only for routes whose
fields it declares, and a request's fields are each model family's own."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sora_relay.domain.videos import ApiError, Upload, form_fields

# API Gateway takes bodies of at most 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024


def read_body(body: str | None, base64_encoded: bool, content_type: str | None) -> tuple[dict[str, Any], list[Upload]]:
    """The call's fields and files; ApiError (400, 413) for a body that cannot be read."""
    try:
        data = base64.b64decode(body or "") if base64_encoded else (body or "").encode()
    except binascii.Error:
        raise ApiError(400, "the body is not valid base64") from None
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
    content_type = content_type or "application/json"
    if content_type.startswith("multipart/form-data"):
        return _form(data, content_type)
    try:
        fields = json.loads(data or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise ApiError(400, "the body must be a JSON object")
    return fields, []


def _form(data: bytes, content_type: str) -> tuple[dict[str, Any], list[Upload]]:
    # The email package is about 10 ms of a cold start: the calls that send a form load it.
    from email.message import Message
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + data)
    if not message.is_multipart() or message.defects:
        raise ApiError(400, "the multipart body could not be read")
    pairs: list[tuple[str, str]] = []
    uploads: list[Upload] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") if isinstance(part, Message) else None
        payload = part.get_payload(decode=True) if isinstance(part, Message) else None
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        filename = part.get_filename()
        if filename is not None and name == "input_reference":
            uploads.append(Upload(filename=filename, content_type=part.get_content_type(), data=payload))
        else:
            pairs.append((name, payload.decode("utf-8", "replace")))
    return form_fields(pairs), uploads
