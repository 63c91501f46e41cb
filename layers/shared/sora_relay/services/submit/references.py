"""A request's reference images: asked of the policy before any credit is reserved, then fetched,
each named by its field and place in the request (`ref_images[1]`) when it is refused."""

from __future__ import annotations

import time
from dataclasses import replace

from sora_relay.domain.ports import InvalidReference, ReferenceFile, ReferenceFiles, ReferenceUnavailable
from sora_relay.domain.request import MAX_REFERENCES_BYTES

# The longest all of a request's references may take to read, whatever their servers do: one
# that trickles its bytes is cut off, and the invocation keeps the time to submit.
REFERENCES_TIME = 60.0


def refused_reference(files: ReferenceFiles, references: list[tuple[str, str]]) -> str | None:
    """Why the first reference the stack may not read is refused, or None."""
    for index, (name, uri) in enumerate(references):
        problem = files.problem(uri)
        if problem is not None:
            return f"{name}[{index}]: {problem}"
    return None


def fetch_references(files: ReferenceFiles, references: list[tuple[str, str]], within: float) -> list[ReferenceFile]:
    """Each reference's bytes, to go to the provider as a part of its field's name, all read
    within `within` seconds (ReferenceUnavailable past it)."""
    deadline = time.monotonic() + within
    fetched = []
    total = 0
    for index, (name, uri) in enumerate(references):
        try:
            fetched.append(replace(files.fetch(uri, deadline - time.monotonic()), field=name))
        except InvalidReference as error:
            raise InvalidReference(f"{name}[{index}]: {error}") from error
        except ReferenceUnavailable as error:
            raise ReferenceUnavailable(f"{name}[{index}]: {error}") from error
        total += len(fetched[-1].content)
        if total > MAX_REFERENCES_BYTES:
            raise InvalidReference(f"{name}: the references together are more than {MAX_REFERENCES_BYTES} bytes")
    return fetched
