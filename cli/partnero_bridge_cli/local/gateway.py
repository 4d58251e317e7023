"""The local HTTP API: turns requests into API Gateway HTTP API (payload v2) events.

Routes come from the functions' HttpApi events in template.yaml. The function's answer is
mapped back the way API Gateway does it, including its default 404, 413 and 500 bodies.

Body limits as deployed: a body over HTTP API's payload quota (10 MB) or an event over
Lambda's synchronous invocation payload (6 MB, base64 and JSON escaping included) is
answered ``413 {"message":"Request Entity Too Large"}`` by the gateway; the function is
not invoked.

``requestContext.http.sourceIp`` is the TCP peer's address. Tests simulate other clients
with the request header ``X-Bridge-Test-Source-Ip`` (a test-only header of this gateway,
removed from the headers the function sees; API Gateway has no such thing).

Local-only ``GET`` paths (the delivery feed, ``/_local/deliveries``) are answered by the
stack itself, never by a function.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from partnero_bridge_cli.local.functions import Invocation
from partnero_bridge_cli.local.template import HttpRoute

Invoke = Callable[[str, dict[str, Any]], Invocation]
# A local-only GET path: its query parameters in, (status, JSON body) out.
LocalRoute = Callable[[Mapping[str, str]], tuple[int, Any]]
# HTTP API's payload quota (10 MB, not adjustable).
MAX_BODY_BYTES = 10 * 1024 * 1024
# Lambda's synchronous invocation payload quota (6 MB): the whole event as JSON.
MAX_EVENT_BYTES = 6 * 1024 * 1024
TOO_LARGE = b'{"message":"Request Entity Too Large"}'
# Test-only: the client address the function should see instead of the TCP peer's.
TEST_SOURCE_IP_HEADER = "x-bridge-test-source-ip"
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded)|.*\+json)")


def _path_pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{p[1:-1].rstrip('+')}>.+)"
        if p.endswith("+}")
        else f"(?P<{p[1:-1]}>[^/]+)"
        if p.startswith("{")
        else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}$")


class BadTestHeader(ValueError):
    """The test-only source IP header is not an IP address."""


def _merged_headers(
    headers: list[tuple[str, str]], source_ip: str
) -> tuple[dict[str, str], list[str], str]:
    """Headers as API Gateway v2 gives them (lower-case names, repeats joined by commas),
    the cookies apart, and the client address (the test-only header's, if sent)."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == TEST_SOURCE_IP_HEADER:
            try:
                source_ip = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                raise BadTestHeader(f"{name} is not an IP address") from None
        elif lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    return merged, cookies, source_ip


def _event_body(body: bytes, content_type: str) -> tuple[str, bool]:
    """The body as the event carries it: text when its type is text and it is UTF-8, else
    base64; and whether it is base64."""
    if not body:
        return "", False
    if _TEXT_TYPES.match(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


def build_event(
    route: HttpRoute,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    """The payload v2 event API Gateway would send for this request.

    ``source_ip`` is the TCP peer's address; an ``X-Bridge-Test-Source-Ip`` header replaces
    it and is left out of the event's headers (BadTestHeader when it is not an IP address).
    """
    url = urlsplit(target)
    merged, cookies, source_ip = _merged_headers(headers, source_ip)
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    event_body, is_base64 = _event_body(body, merged.get("content-type", ""))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = event_body
    return event


def event_size(event: dict[str, Any]) -> int:
    """Bytes of the event as Lambda receives it (the invocation payload)."""
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())


def response_from(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """What API Gateway sends back for a v2 integration answer."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload v2 lets a function return a bare value: API Gateway wraps it as JSON 200.
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    headers.extend(("set-cookie", c) for c in result.get("cookies") or [])
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, raw


class BodyRefused(Exception):
    """A request body the gateway answers itself, without invoking the function."""

    def __init__(self, status: int, answer: bytes = b'{"message":"Bad Request"}') -> None:
        super().__init__(status)
        self.status = status
        self.answer = answer


_MAX_CHUNK_LINE = 4096
_HEX = frozenset(b"0123456789abcdefABCDEF")


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    """The request body, by ``Content-Length`` or ``Transfer-Encoding: chunked`` (which a
    client may send instead, and API Gateway takes): BodyRefused 413 past HTTP API's 10 MB
    (refused unread), 400 when its length or chunks cannot be read."""
    encoding = (request.headers.get("Transfer-Encoding") or "").strip().lower()
    if encoding:
        if encoding != "chunked":
            raise BodyRefused(400)
        return _read_chunked(request.rfile)
    declared = request.headers.get("Content-Length") or "0"
    if not (declared.isascii() and declared.isdigit()):
        raise BodyRefused(400)
    length = int(declared)
    if length > MAX_BODY_BYTES:
        raise BodyRefused(413, TOO_LARGE)
    return request.rfile.read(length) if length else b""


def _read_chunked(stream: Any) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(_MAX_CHUNK_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        if len(line) > _MAX_CHUNK_LINE or not size_text or not set(size_text) <= _HEX:
            raise BodyRefused(400)
        size = int(size_text, 16)
        if len(body) + size > MAX_BODY_BYTES:
            raise BodyRefused(413, TOO_LARGE)
        if size == 0:
            break
        data = stream.read(size)
        if len(data) < size or stream.read(2) != b"\r\n":
            raise BodyRefused(400)
        body += data
    while True:  # trailer fields, up to the empty line
        line = stream.readline(_MAX_CHUNK_LINE + 1)
        if not line or len(line) > _MAX_CHUNK_LINE:
            raise BodyRefused(400)
        if line in (b"\r\n", b"\n"):
            return bytes(body)


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) resets connections when a sender fires a burst, as
    # Stripe or a load test does; API Gateway queues them instead.
    request_queue_size = 256
    daemon_threads = True


class Gateway:
    def __init__(
        self,
        port: int,
        routes: list[HttpRoute],
        invoke: Invoke,
        local: Mapping[str, LocalRoute] | None = None,
    ) -> None:
        self._routes = [(route, _path_pattern(route.path)) for route in routes]
        self._local = dict(local or {})
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                gateway.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._invoke = invoke
        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route, pattern in self._routes:
            found = pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        try:
            body = read_body(request)
        except BodyRefused as refused:
            request.close_connection = True  # the rest of the body is unread or unknown
            self._reply(request, refused.status, [], refused.answer)
            return
        url = urlsplit(request.path)
        path = url.path
        # A local route is keyed by its path (GET) or by "<METHOD> <path>".
        local = self._local.get(f"{request.command} {path}")
        if local is None and request.command in ("GET", "HEAD"):
            local = self._local.get(path)
        if local is not None:
            status, answer = local(dict(parse_qsl(url.query)))
            self._reply(
                request, status, [("cache-control", "no-store")], json.dumps(answer).encode()
            )
            return
        matched = self._match(request.command, path)
        if matched is None:
            self._reply(
                request, 404, [("content-type", "application/json")], b'{"message":"Not Found"}'
            )
            return
        route, path_parameters = matched
        try:
            event = build_event(
                route,
                request.command,
                request.path,
                list(request.headers.items()),
                body,
                request.client_address[0],
                path_parameters,
            )
        except BadTestHeader as exc:
            self._reply(request, 400, [], json.dumps({"message": str(exc)}).encode())
            return
        if event_size(event) > MAX_EVENT_BYTES:
            self._reply(request, 413, [], TOO_LARGE)
            return
        outcome = self._invoke(route.function, event)
        if outcome.error is not None:
            self._reply(
                request,
                500,
                [("content-type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )
            return
        status, headers, raw = response_from(outcome.payload)
        self._reply(request, status, headers, raw)

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        request.send_response(status)
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(name, value)
        if "content-type" not in names and body:
            request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        if request.close_connection:
            request.send_header("Connection", "close")
        request.send_header("apigw-requestid", uuid.uuid4().hex[:16])
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
