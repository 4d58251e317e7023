"""The local gateway's events: the client address the function sees, and the test-only
header that simulates another client (removed before the function sees the headers)."""

from __future__ import annotations

import pytest

from partnero_bridge_cli.local.gateway import (
    TEST_SOURCE_IP_HEADER,
    BadTestHeader,
    build_event,
    event_size,
)
from partnero_bridge_cli.local.template import HttpRoute

pytestmark = pytest.mark.unit

ROUTE = HttpRoute("POST", "/signup", "SignupIngestFunction")
PEER = "127.0.0.1"


def event(headers: list[tuple[str, str]], body: bytes = b"{}") -> dict[str, object]:
    return build_event(ROUTE, "POST", "/signup", headers, body, PEER, {})


def source_ip(built: dict[str, object]) -> object:
    return built["requestContext"]["http"]["sourceIp"]  # type: ignore[index]


def test_the_source_ip_is_the_peer_without_the_test_header() -> None:
    built = event([("Content-Type", "application/json")])

    assert source_ip(built) == PEER


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("X-Bridge-Test-Source-Ip", "198.51.100.7", "198.51.100.7", id="ipv4"),
        pytest.param("x-bridge-test-source-ip", " 2001:db8::1 ", "2001:db8::1", id="ipv6-padded"),
        pytest.param("X-BRIDGE-TEST-SOURCE-IP", "2001:DB8:0::2", "2001:db8::2", id="normalised"),
    ],
)
def test_the_test_header_replaces_the_source_ip_and_is_removed(
    name: str, value: str, expected: str
) -> None:
    built = event([("Content-Type", "application/json"), (name, value)])

    assert source_ip(built) == expected
    assert TEST_SOURCE_IP_HEADER not in built["headers"]  # type: ignore[operator]
    assert built["headers"] == {"content-type": "application/json"}


@pytest.mark.parametrize("value", ["", "not-an-ip", "10.0.0.1, 10.0.0.2", "999.1.1.1"])
def test_a_test_header_that_is_not_an_address_is_refused(value: str) -> None:
    with pytest.raises(BadTestHeader, match="not an IP address"):
        event([(TEST_SOURCE_IP_HEADER, value)])


def test_x_forwarded_for_is_passed_on_but_never_the_source_ip() -> None:
    built = event([("X-Forwarded-For", "198.51.100.9")])

    assert source_ip(built) == PEER
    assert built["headers"] == {"x-forwarded-for": "198.51.100.9"}


def test_event_size_counts_base64_and_escaping() -> None:
    text = event([("Content-Type", "application/json")], b"x" * 3000)
    binary = event([("Content-Type", "application/octet-stream")], b"\xff" * 3000)

    assert text["isBase64Encoded"] is False
    assert binary["isBase64Encoded"] is True
    # Base64 makes 3,000 bytes 4,000 characters.
    assert event_size(binary) - event_size(text) >= 1000 - 100
