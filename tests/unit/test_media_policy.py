import socket

import pytest

from sora_relay.adapters.media.policy import AddressNotPublic, MediaPolicy, ReferencePolicy, is_public

PUBLIC = {
    "cdn.geminigen.ai": ["104.18.2.10"],
    "a.b.geminigen.ai": ["2606:4700::6812:20a"],
    "media.example.com": ["93.184.215.14"],
}
SNEAKY = {
    "evil.geminigen.ai": ["169.254.169.254"],
    "inside.geminigen.ai": ["10.0.0.7"],
    "me.geminigen.ai": ["127.0.0.1"],
}


def resolver(host: str) -> list[str]:
    return {**PUBLIC, **SNEAKY}.get(host, [])


POLICY = MediaPolicy.parse("*.geminigen.ai, media.example.com", "https://api.geminigen.ai", resolver)


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
        ("https://evil.geminigen.ai/1.mp4", "non-public address (169.254.169.254)"),
        ("https://inside.geminigen.ai/1.mp4", "non-public address (10.0.0.7)"),
        ("https://me.geminigen.ai/1.mp4", "non-public address (127.0.0.1)"),
    ],
)
def test_refused_addresses(url: str, reason: str) -> None:
    assert reason in (POLICY.problem(url) or "")


def test_provider_base_scheme_and_host_are_always_allowed() -> None:
    local = MediaPolicy.parse("", "http://127.0.0.1:8080", resolver)
    assert local.problem("http://127.0.0.1:8080/media/x.mp4") is None
    assert local.problem("http://127.0.0.1:9090/media/x.mp4") is not None


REFERENCES = ReferencePolicy.parse("inputs, shared-refs", "*", resolver)


@pytest.mark.parametrize("uri", ["s3://inputs/a.png", "s3://shared-refs/x/y.mp4", "https://media.example.com/a.png"])
def test_allowed_references(uri: str) -> None:
    assert REFERENCES.problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("s3://other/a.png", "bucket other is not one"),
        ("http://media.example.com/a.png", "only https"),
        ("https://me.geminigen.ai/a.png", "non-public address"),
        ("https://[::1]/a.png", "non-public address"),
    ],
)
def test_refused_references(uri: str, reason: str) -> None:
    policy = ReferencePolicy.parse("inputs", "*", lambda host: ["::1"] if host == "::1" else resolver(host))
    assert reason in (policy.problem(uri) or "")


def test_reference_hosts_can_be_narrowed() -> None:
    narrow = ReferencePolicy.parse("", "*.example.com", resolver)
    assert narrow.problem("https://media.example.com/a.png") is None
    assert "not in the allowed hosts" in (narrow.problem("https://cdn.geminigen.ai/a.png") or "")


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 of 169.254.169.254
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::ffff:192.168.1.1",  # IPv4-mapped
        "fd00::1",
        "fe80::1%eth0",
    ],
)
def test_ipv6_forms_of_private_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_addresses_and_their_ipv6_forms_are_public(address: str) -> None:
    assert is_public(address)


def test_video_host_resolving_to_nat64_of_a_private_address_is_refused() -> None:
    policy = MediaPolicy.parse("*.geminigen.ai", "https://api.geminigen.ai", lambda host: ["64:ff9b::a9fe:a9fe"])
    assert "non-public address" in (policy.problem("https://cdn.geminigen.ai/v.mp4") or "")


def test_connection_goes_to_the_vetted_address() -> None:
    assert POLICY.connect_address("cdn.geminigen.ai", 443) == "104.18.2.10"


def test_connection_to_a_host_resolving_to_any_private_address_is_refused() -> None:
    policy = MediaPolicy.parse("*", "https://api.geminigen.ai", lambda host: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(AddressNotPublic, match=r"10\.0\.0\.1"):
        policy.connect_address("cdn.geminigen.ai", 443)


def test_connection_to_a_host_that_does_not_resolve_is_refused() -> None:
    policy = MediaPolicy.parse("*", "https://api.geminigen.ai", lambda host: [])
    with pytest.raises(AddressNotPublic, match="has no address"):
        policy.connect_address("cdn.geminigen.ai", 443)


def test_connection_to_the_provider_goes_to_its_host_as_configured() -> None:
    local = MediaPolicy.parse("", "http://127.0.0.1:8080", resolver)
    assert local.connect_address("127.0.0.1", 8080) == "127.0.0.1"
    with pytest.raises(AddressNotPublic):
        local.connect_address("127.0.0.1", 9090)


def test_reference_host_with_no_address_is_refused_before_any_download() -> None:
    policy = ReferencePolicy.parse("", "*", lambda host: [])
    assert policy.problem("https://images.example/x.png") == "host images.example has no address"


def test_reference_host_whose_lookup_failed_is_left_to_the_download_to_try_again() -> None:
    def failing(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    assert ReferencePolicy.parse("", "*", failing).problem("https://images.example.com/x.png") is None
