"""Whatever arrives on the queue: a clear invalid_request naming a field, or a valid request; never a crash."""

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_relay.request import VideoRequest
from sora_relay.services.submit import Done, InboundMessage

from .conftest import World

FIELDS = sorted(VideoRequest.model_fields)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
hostile_files = st.lists(
    st.sampled_from(
        [
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "s3://",
            "s3://bucket",
            "https://",
            "gopher://x",
            "\u202ehttps://evil",
            "javascript:alert(1)",
        ]
    )
    | st.text(max_size=40),
    min_size=1,
    max_size=6,
)
bodies = st.one_of(
    st.text(),  # not JSON at all, or JSON that is not an object
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from([*FIELDS, "reslution", "callback_url", ""]), json_values).map(json.dumps),
    st.fixed_dictionaries(
        {"prompt": st.text(alphabet=string.printable + "\u0000\u202e\U0001f600\ud7ff", max_size=6000)},
        optional={"files": hostile_files, "duration": json_values, "metadata": json_values},
    ).map(json.dumps),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=bodies)
def test_any_body_ends_as_a_valid_submission_or_a_named_invalid_request(body: str) -> None:
    world = World()
    assert world.submitter.handle(InboundMessage("m-1", body)) == Done()
    if world.provider.submitted:
        assert len(world.provider.submitted) == 1
        assert world.publisher.events == []
        return
    [event] = world.publisher.events
    assert event.error is not None
    assert event.error.code == "invalid_request"
    if event.error.message.startswith("the message body"):
        return  # not JSON, or not an object: no field to name
    names = {*FIELDS, *(key or '""' for key in json.loads(body))}
    for part in event.error.message.split("; "):
        assert any(part.startswith((f"{name}:", f"{name}.", f"{name}[")) for name in names), part


@settings(max_examples=100, deadline=None)
@given(files=hostile_files)
def test_hostile_files_never_reach_the_provider(files: list[str]) -> None:
    world = World()
    world.submitter.handle(InboundMessage("m-1", json.dumps({"prompt": "a fox", "files": files})))
    if world.provider.submitted:
        # Only entries of the right form get this far; the fetcher's policy then judges them.
        assert all(uri.startswith(("s3://", "https://")) for uri in files)
    else:
        [event] = world.publisher.events
        assert event.error.message.startswith("files")
