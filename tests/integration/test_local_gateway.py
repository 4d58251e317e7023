"""The local gateway over real HTTP: body limits answered as API Gateway answers them,
without invoking the function, and the client address the function sees.

API Gateway HTTP API refuses a body over its 10 MB payload quota, and a request whose
event would exceed Lambda's 6 MB synchronous invocation payload, with
``413 {"message":"Request Entity Too Large"}``; the function never runs.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.functions import Invocation
from partnero_bridge_cli.local.gateway import (
    MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    TEST_SOURCE_IP_HEADER,
    Gateway,
)
from partnero_bridge_cli.local.template import HttpRoute

pytestmark = pytest.mark.integration

TOO_LARGE = {"message": "Request Entity Too Large"}


class Recorder:
    """A function that answers 200 and keeps every event it was given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        return Invocation({"statusCode": 200, "body": '{"status":"accepted"}'})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Gateway, Recorder]]:
    recorder = Recorder()
    server = Gateway(0, [HttpRoute("POST", "/webhooks/stripe", "StripeIngest")], recorder)
    server.start()
    try:
        yield server, recorder
    finally:
        server.stop()


@pytest.fixture
def gateway(served: tuple[Gateway, Recorder]) -> Gateway:
    return served[0]


@pytest.fixture
def recorder(served: tuple[Gateway, Recorder]) -> Recorder:
    served[1].events.clear()
    return served[1]


def post(gateway: Gateway, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/webhooks/stripe", content=body, headers=headers, timeout=30)


def raw_request(gateway: Gateway, head: str) -> tuple[int, dict[str, Any]]:
    """Send only a request head (no body) and read the status line and JSON body."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)


def test_the_function_sees_the_tcp_peer_as_source_ip(gateway: Gateway, recorder: Recorder) -> None:
    assert post(gateway, b"{}").status_code == 200

    [event] = recorder.events
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_the_test_header_sets_the_source_ip_and_is_not_passed_on(
    gateway: Gateway, recorder: Recorder
) -> None:
    headers = {"X-Bridge-Test-Source-Ip": "198.51.100.23", "X-Forwarded-For": "203.0.113.1"}

    assert post(gateway, b"{}", **headers).status_code == 200

    [event] = recorder.events
    assert event["requestContext"]["http"]["sourceIp"] == "198.51.100.23"
    assert TEST_SOURCE_IP_HEADER not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "203.0.113.1"


def test_a_bad_test_header_is_a_400_without_invoking(gateway: Gateway, recorder: Recorder) -> None:
    answer = post(gateway, b"{}", **{"X-Bridge-Test-Source-Ip": "somewhere"})

    assert answer.status_code == 400
    assert recorder.events == []


def test_a_body_over_the_payload_quota_is_refused_unread(
    gateway: Gateway, recorder: Recorder
) -> None:
    head = (
        "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    )

    assert raw_request(gateway, head) == (413, TOO_LARGE)
    assert recorder.events == []


@pytest.mark.parametrize("length", ["-1", "ten", "1e3"])
def test_a_content_length_that_is_not_one_is_a_400(
    gateway: Gateway, recorder: Recorder, length: str
) -> None:
    head = f"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"

    assert raw_request(gateway, head)[0] == 400
    assert recorder.events == []


@pytest.mark.parametrize(
    ("size", "content_type"),
    [
        # Binary bodies travel base64-encoded: 4.8 MB become 6.4 MB of event.
        pytest.param(4_800_000, "application/octet-stream", id="binary-4.8MB"),
        # Text counts as it is, plus the event around it.
        pytest.param(MAX_EVENT_BYTES, "application/json", id="text-6MiB"),
    ],
)
def test_an_event_over_lambdas_payload_quota_is_refused_without_invoking(
    gateway: Gateway, recorder: Recorder, size: int, content_type: str
) -> None:
    answer = post(gateway, b"a" * size, **{"Content-Type": content_type})

    assert (answer.status_code, answer.json()) == (413, TOO_LARGE)
    assert recorder.events == []


def test_a_large_body_under_both_quotas_reaches_the_function(
    gateway: Gateway, recorder: Recorder
) -> None:
    answer = post(gateway, b"a" * 4_000_000, **{"Content-Type": "application/octet-stream"})

    assert answer.status_code == 200
    assert len(recorder.events) == 1


# -- chunked request bodies (Transfer-Encoding: chunked, no Content-Length) -----------------


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def exchange(gateway: Gateway, data: bytes) -> list[bytes]:
    """Send raw bytes on one connection; the status lines of every answer read back."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", answer)


def test_a_chunked_body_reaches_the_function_whole(gateway: Gateway, recorder: Recorder) -> None:
    body = b'{"id":"evt_chunked","object":"event"}'
    head = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    # The same connection then carries a second request: nothing of the first is left over.
    second = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )

    statuses = exchange(gateway, head + chunked(body) + second)

    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
    assert [e.get("body") for e in recorder.events] == [body.decode(), "{}"]


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"zz\r\nabc\r\n0\r\n\r\n", id="size-not-hex"),
        pytest.param(b"5\r\nab", id="cut-short"),
        pytest.param(b"3\r\nabcXX0\r\n\r\n", id="no-crlf-after-data"),
    ],
)
def test_a_malformed_chunked_body_is_a_400_without_invoking(
    gateway: Gateway, recorder: Recorder, encoded: bytes
) -> None:
    head = b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

    assert exchange(gateway, head + encoded)[0].startswith(b"HTTP/1.1 400 ")
    assert recorder.events == []


def test_a_chunked_body_over_the_payload_quota_is_refused(
    gateway: Gateway, recorder: Recorder
) -> None:
    head = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n" % (MAX_BODY_BYTES + 1)
    )

    assert exchange(gateway, head)[0].startswith(b"HTTP/1.1 413 ")
    assert recorder.events == []
