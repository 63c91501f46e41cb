import pytest

from sora_relay.media_policy import MediaPolicy

POLICY = MediaPolicy.parse("*.geminigen.ai, media.example.com", "https://api.geminigen.ai")


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.geminigen.ai/v/1.mp4",
        "https://a.b.geminigen.ai/1.mp4",
        "https://MEDIA.example.com/1.mp4",
        "https://api.geminigen.ai/media/1.mp4",
    ],
)
def test_allowed_addresses(url: str) -> None:
    assert POLICY.problem(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cdn.geminigen.ai/1.mp4", "only https"),
        ("https://geminigen.ai.evil.com/1.mp4", "not in the allowed"),
        ("https://evilgeminigen.ai/1.mp4", "not in the allowed"),
        ("https://169.254.169.254/latest/meta-data", "not in the allowed"),
        ("file:///etc/passwd", "only https"),
    ],
)
def test_refused_addresses(url: str, reason: str) -> None:
    assert reason in (POLICY.problem(url) or "")


def test_provider_base_scheme_and_host_are_always_allowed() -> None:
    local = MediaPolicy.parse("", "http://127.0.0.1:8080")
    assert local.problem("http://127.0.0.1:8080/media/x.mp4") is None
    assert local.problem("http://127.0.0.1:9090/media/x.mp4") is not None
