"""What the local fake HTTP services have in common (the Partnero sandbox, the fake Ecwid API).

A fake is built from four pieces, each a subclass of one defined here:

* :class:`FakeApi`: the fake's state, guarded by one lock, and its API semantics (routes,
  validation, error shapes). The base owns the fault queue, the recorded requests and the admin
  endpoints every fake offers (``state``, ``requests``, ``reset``, ``faults``);
* :class:`FakeHandler`: only the ``Server`` header, ``Content-Type`` and float policy of the
  fake's answers; the base reads bodies (Content-Length or chunked), answers admin calls (not
  recorded), records every other request in arrival order and applies the first matching
  :class:`Fault`;
* :class:`FakeService`: the public class, serving the API over HTTP from a daemon thread
  (start, stop, context manager, port and URLs) with the Python side of faults and recorded
  requests;
* and a ``main()`` that hands the service to :func:`serve_until_signalled`.

JSON is read and written with exact numbers: every non-integer number is a ``decimal.Decimal``
and is written back with the same digits, never through ``float``.
"""

import contextlib
import copy
import json
import signal
import socket
import socketserver
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, ClassVar, Final, Self, cast
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "NO_ANSWER_STATUS",
    "Answer",
    "FakeApi",
    "FakeHandler",
    "FakeServer",
    "FakeService",
    "Fault",
    "RecordedRequest",
    "dumps",
    "loads",
    "message_answer",
    "phrase",
    "segments",
    "serve_until_signalled",
]

NO_ANSWER_STATUS: Final = 0
"""Status recorded for a request a fake answered by resetting the connection."""

_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
_MAX_LINE_BYTES: Final = 65537
_EXPECTED_FAULTS: Final = "Expected a fault object or a list of them"
_MALFORMED_BODY: Final = (
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
)


# --------------------------------------------------------------------------------------------
# JSON with exact numbers, paths and status phrases
# --------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Parse JSON; every non-integer number becomes a ``Decimal`` with the digits it was given."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def dumps(value: Any, *, allow_nan: bool = False) -> str:
    """Compact JSON; a ``Decimal`` is written as a plain number with exactly its digits.

    A float NaN or infinity is an error, unless ``allow_nan``: then it is written the way
    ``json.dumps`` writes it (``NaN``, ``Infinity``), which is not JSON.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinities cannot be written as JSON")
        return format(value, "f")
    if isinstance(value, float) and value != value and not allow_nan:
        raise ValueError("NaN cannot be written as JSON")
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, allow_nan=allow_nan)
    if isinstance(value, Mapping):
        members = (
            f"{json.dumps(str(key))}:{dumps(item, allow_nan=allow_nan)}"
            for key, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item, allow_nan=allow_nan) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def segments(rest: str) -> list[str]:
    """The percent-decoded segments of a path (what follows a fake's prefix)."""
    rest = rest.strip("/")
    return [unquote(part) for part in rest.split("/")] if rest else []


def phrase(status: int, default: str) -> str:
    """The standard reason phrase of a status, or ``default`` for a status without one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return default


def _has_prefix(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received on its API (admin calls are not recorded)."""

    method: str
    path: str
    """Path as received (still percent-encoded), without the query string."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names in lower case; repeated headers are joined with ", "."""
    body: Any
    """Parsed JSON body (non-integer numbers as ``Decimal``), or None if empty or not JSON."""
    raw_body: bytes
    status: int
    """Status the fake answered, or ``NO_ANSWER_STATUS`` (0) for a connection reset."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view without the raw bytes and with the API key masked."""
        headers = dict(self.headers)
        if "authorization" in headers:
            headers["authorization"] = "Bearer ***"
        return {
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": headers,
            "body": copy.deepcopy(self.body),
            "status": self.status,
        }


@dataclass
class Fault:
    """A misbehaviour applied to the next matching API requests of a fake.

    At most one of ``status``, ``reset`` and ``malformed`` may be set. Without ``after_success``
    the request is not processed when one of them is set (nothing is stored); a fault with only
    ``delay_seconds``/``retry_after`` delays (or decorates) the normal answer. With
    ``after_success`` the request is processed normally first (the sandbox stores the customer
    or transaction) and the fault then replaces the answer: "the request was accepted but the
    answer was lost".
    """

    status: int | None = None
    retry_after: str | None = None
    delay_seconds: float = 0
    reset: bool = False
    malformed: bool = False
    count: int = 1
    """How many requests it applies to; -1 means until cleared."""
    method: str | None = None
    path_prefix: str | None = None
    """Matched against the path with or without the fake's API prefix ("/v1", "/api/v3")."""
    after_success: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be between 100 and 599")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        if self.count != -1 and self.count < 1:
            raise ValueError("count must be -1 (until cleared) or at least 1")
        outcomes = [self.status is not None, self.reset, self.malformed]
        if sum(outcomes) > 1:
            raise ValueError("set at most one of status, reset and malformed")
        if not any(outcomes) and self.delay_seconds == 0 and self.retry_after is None:
            raise ValueError("the fault does nothing: set status, reset, malformed or a delay")

    def matches(self, method: str, path: str, api_prefix: str = "/v1") -> bool:
        """Whether this fault applies to a request with this method and path.

        ``path_prefix`` may leave out ``api_prefix``: the API prefix of the fake, by default the
        Partnero sandbox's ``/v1``.
        """
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_prefix is None:
            return True
        api_path = path[len(api_prefix) :] if _has_prefix(path, api_prefix) else path
        return path.startswith(self.path_prefix) or api_path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Fault":
        """Build a fault from its JSON form (as posted to an admin ``faults`` endpoint)."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                if name in {"status", "retry_after", "method", "path_prefix"}:
                    kwargs[name] = None
                    continue
                raise ValueError(f"{name} must not be null")
            if name in {"reset", "malformed", "after_success"}:
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
                kwargs[name] = value
            elif name in {"status", "count"}:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be an integer")
                kwargs[name] = value
            elif name == "delay_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                    raise ValueError("delay_seconds must be a number")
                kwargs[name] = float(value)
            elif name == "retry_after":
                if isinstance(value, bool) or not isinstance(value, str | int):
                    raise ValueError("retry_after must be a string")
                kwargs[name] = str(value)
            else:
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
                kwargs[name] = value
        return cls(**kwargs)


def _copy_fault(fault: Fault) -> Fault:
    return Fault(**asdict(fault))


# --------------------------------------------------------------------------------------------
# Answers and the API base
# --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What a fake answers: a status, a JSON payload (None for no body) and extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def message_answer(status: int, message: str, headers: Mapping[str, str] | None = None) -> Answer:
    """``{"message": ...}``: the shape of every admin interface error."""
    return Answer(status, {"message": message}, dict(headers or {}))


class _Slot:
    """Place of a request in the record, reserved on arrival and filled before answering."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: RecordedRequest | None = None


_ADMIN_ENDPOINTS: Final[Mapping[str, tuple[str, ...]]] = {
    "state": ("GET",),
    "requests": ("GET",),
    "reset": ("POST",),
    "faults": ("GET", "POST", "DELETE"),
}


class FakeApi(ABC):
    """All state of a fake, guarded by one lock, and the request handling that works on it.

    The base keeps the fault queue, the recorded requests and the admin endpoints every fake
    has. A subclass adds its own state (extending :meth:`reset`), its API (:meth:`handle`), its
    error shapes (:meth:`fault_answer`, :meth:`protocol_error`), its admin ``state``
    (:meth:`admin_state`) and any further admin endpoints (:meth:`admin_methods` and
    :meth:`admin_route`).
    """

    api_prefix: ClassVar[str]
    """Path prefix of the API (``/v1``); faults only apply below it."""
    admin_prefix: ClassVar[str]
    """Path prefix of the admin interface (``/_sandbox``): no auth, not recorded."""
    label: ClassVar[str]
    """How admin errors name the fake: "Unknown <label> admin endpoint"."""
    fault_fields_first: ClassVar[bool] = False
    """Whether a posted fault list reports an invalid fault before an item that is not an
    object (the sandbox) or the other way round (the fake Ecwid)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.root_url = ""
        """Where the fake is served, e.g. ``http://127.0.0.1:54321``; set when it starts."""
        self.faults: list[Fault] = []
        self.records: list[_Slot] = []

    def is_api_path(self, path: str) -> bool:
        return _has_prefix(path, self.api_prefix)

    def html_page(self, path: str) -> bytes | None:
        """A page for people at ``path``, if the fake has one (it answers GET with it)."""
        return None

    def is_admin_path(self, path: str) -> bool:
        return _has_prefix(path, self.admin_prefix)

    # ---- faults and recorded requests ------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests and faults; subclasses forget their own data as well."""
        with self.lock:
            self.faults = []
            self.records = []

    def add_fault(self, fault: Fault) -> None:
        copied = _copy_fault(fault)
        with self.lock:
            self.faults.append(copied)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = []

    def fault_list(self) -> list[Fault]:
        with self.lock:
            return [_copy_fault(fault) for fault in self.faults]

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first queued fault that matches this API request."""
        if not self.is_api_path(path):
            return None
        with self.lock:
            for index, fault in enumerate(self.faults):
                if not fault.matches(method, path, self.api_prefix):
                    continue
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        del self.faults[index]
                return fault
        return None

    def reserve_slot(self) -> _Slot:
        slot = _Slot()
        with self.lock:
            self.records.append(slot)
        return slot

    def fill_slot(self, slot: _Slot, record: RecordedRequest) -> None:
        with self.lock:
            slot.value = record

    def recorded(self) -> list[RecordedRequest]:
        with self.lock:
            return [slot.value for slot in self.records if slot.value is not None]

    # ---- the fake's own API ----------------------------------------------------------------

    @abstractmethod
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes
    ) -> Answer:
        """Answer an API request (any path outside the admin interface)."""

    @abstractmethod
    def fault_answer(self, status: int) -> Answer:
        """The answer for a fault injecting this status, in the fake's error shape."""

    @abstractmethod
    def protocol_error(self, status: int, message: str | None) -> Any:
        """The body for an error http.server itself reports (bad request line, unreadable body)."""

    @abstractmethod
    def admin_state(self) -> Any:
        """What ``GET <admin prefix>/state`` answers."""

    # ---- admin interface -------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> Answer:
        """Answer an admin call: unknown endpoint 404, wrong method 405, bad JSON 400.

        :meth:`admin_route` runs under the lock; it may raise ``KeyError`` for something unknown
        (404) and ``ValueError`` or ``TypeError`` for a bad request (400), with the message.
        """
        parts = self.admin_parts(path[len(self.admin_prefix) :])
        allowed = self.admin_methods(parts)
        if allowed is None:
            return message_answer(404, f"Unknown {self.label} admin endpoint: {path}")
        if method not in allowed:
            return message_answer(
                405,
                f"The {method} method is not supported for {path}.",
                {"Allow": ", ".join(allowed)},
            )
        try:
            body = loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return message_answer(400, "Malformed JSON")
        with self.lock:
            try:
                return self.admin_route(method, parts, body)
            except KeyError as error:
                return message_answer(404, str(error.args[0]) if error.args else "Not found")
            except (TypeError, ValueError) as error:
                return message_answer(400, str(error))

    def admin_parts(self, rest: str) -> list[str]:
        """The segments of an admin path after the admin prefix, percent-decoded."""
        return segments(rest)

    def admin_methods(self, parts: list[str]) -> tuple[str, ...] | None:
        """The methods an admin endpoint accepts, or None if there is no such endpoint."""
        return _ADMIN_ENDPOINTS.get(parts[0]) if len(parts) == 1 else None

    def admin_route(self, method: str, parts: list[str], body: Any) -> Answer:
        """Answer an admin call to an endpoint :meth:`admin_methods` accepts."""
        name = parts[0]
        if name == "state":
            return Answer(200, self.admin_state())
        if name == "requests":
            return Answer(200, [self.record_json(record) for record in self.recorded()])
        if name == "reset":
            self.reset()
            return Answer(200, {"ok": True})
        if name != "faults":
            raise KeyError(f"Unknown {self.label} admin endpoint: {'/'.join(parts)}")
        if method == "POST":
            for fault in self.parse_faults(body):
                self.add_fault(fault)
        elif method == "DELETE":
            self.clear_faults()
        return Answer(200, {"faults": [fault.to_json() for fault in self.faults]})

    def parse_faults(self, body: Any) -> list[Fault]:
        """The faults posted to the admin ``faults`` endpoint: one object or a list of them."""
        items = body if isinstance(body, list) else [body]
        objects = [item for item in items if isinstance(item, dict)]
        if not self.fault_fields_first and len(objects) != len(items):
            raise ValueError(_EXPECTED_FAULTS)
        try:
            new = [Fault.from_json(item) for item in objects]
        except (TypeError, ValueError) as error:
            raise ValueError(f"Invalid fault: {error}") from None
        if not new or len(new) != len(items):
            raise ValueError(_EXPECTED_FAULTS)
        return new

    def record_json(self, record: RecordedRequest) -> dict[str, Any]:
        """A recorded request as ``GET <admin prefix>/requests`` lists it."""
        return record.to_json()


# --------------------------------------------------------------------------------------------
# HTTP server and request handler
# --------------------------------------------------------------------------------------------


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of concurrent clients (fault and storm tests) must queue, not be reset.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        api: FakeApi,
        stopping: threading.Event,
        handler: type["FakeHandler"],
    ) -> None:
        self.api = api
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can be slow; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: clients going away mid-answer are expected (timeouts, resets)."""

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down open (keep-alive) connections so their handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class FakeHandler(BaseHTTPRequestHandler):
    """Serves a :class:`FakeApi`; a subclass sets ``server_version`` (and may set
    ``content_type`` and ``allow_nan``)."""

    protocol_version = "HTTP/1.1"
    content_type: ClassVar[str] = "application/json"
    allow_nan: ClassVar[bool] = False
    """Whether a float NaN or infinity in an answer is written (as ``NaN``, ``Infinity``)."""
    # Headers and body go out in separate writes: without TCP_NODELAY every answer would wait
    # for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    @property
    def fake_server(self) -> FakeServer:
        return cast(FakeServer, self.server)

    def setup(self) -> None:
        super().setup()
        self.fake_server.track(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.fake_server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines http.server writes to stderr."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, unsupported method) with JSON."""
        self.close_connection = True
        payload = self.fake_server.api.protocol_error(code, message)
        self.send_raw(code, dumps(payload, allow_nan=self.allow_nan).encode(), {})

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_OPTIONS(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    # ---- plumbing --------------------------------------------------------------------------

    def read_body(self) -> bytes | None:
        """Read the request body (Content-Length or chunked); None if it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY_BYTES:
            return None
        data = self.rfile.read(length) if length else b""
        return data if len(data) == length else None

    def read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE_BYTES)
            if not line:
                return None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(_MAX_LINE_BYTES) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY_BYTES:
                return None
            data = self.rfile.read(size)
            if len(data) != size:
                return None
            chunks.append(data)
            self.rfile.readline(_MAX_LINE_BYTES)

    def send_raw(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        content_type: str | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type or self.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def send_answer(self, answer: Answer) -> None:
        if answer.payload is None:
            body = b""
        else:
            body = dumps(answer.payload, allow_nan=self.allow_nan).encode()
        self.send_raw(answer.status, body, answer.headers)

    def reset_connection(self) -> None:
        """Close without answering, with SO_LINGER 0 so the peer gets a TCP reset."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered reader holds a reference to the socket: close it first so that closing
        # the socket really closes the descriptor now.
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.connection.close()

    def dispatch(self) -> None:
        method = self.command
        split = urlsplit(self.path)
        path = split.path or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lower = name.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        raw = self.read_body()
        if raw is None:
            self.send_error(400, "Unreadable request body")
            return
        api = self.fake_server.api
        page = api.html_page(path) if method in ("GET", "HEAD") else None
        if page is not None:
            self.send_raw(200, page, {"Cache-Control": "no-store"}, "text/html; charset=utf-8")
            return
        if api.is_admin_path(path):
            self.send_answer(api.admin(method, path, raw))
            return

        slot = api.reserve_slot()
        try:
            body = loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None

        def record(status: int) -> None:
            api.fill_slot(slot, RecordedRequest(method, path, query, headers, body, raw, status))

        fault = api.take_fault(method, path)
        if fault is None:
            answer = api.handle(method, path, query, headers, raw)
            record(answer.status)
            self.send_answer(answer)
            return

        processed = api.handle(method, path, query, headers, raw) if fault.after_success else None
        if fault.delay_seconds > 0 and self.fake_server.stopping.wait(fault.delay_seconds):
            record(NO_ANSWER_STATUS)  # the fake is stopping: drop the connection
            self.reset_connection()
            return
        if fault.reset:
            record(NO_ANSWER_STATUS)
            self.reset_connection()
            return
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.malformed:
            record(200)
            self.send_raw(200, _MALFORMED_BODY, extra)
            return
        if fault.status is not None:
            answer = api.fault_answer(fault.status)
        elif processed is not None:
            answer = processed
        else:  # a pure delay (maybe with Retry-After): handle the request now, after the hang
            answer = api.handle(method, path, query, headers, raw)
        answer.headers.update(extra)
        record(answer.status)
        self.send_answer(answer)


# --------------------------------------------------------------------------------------------
# The public service base and the command line loop
# --------------------------------------------------------------------------------------------


class FakeService[ApiT: FakeApi]:
    """A fake API served over HTTP from a daemon thread; subclasses add their Python API."""

    handler_class: ClassVar[type[FakeHandler]]
    description: ClassVar[str]
    """How errors name the fake: "<description> is already running"."""
    thread_name: ClassVar[str]
    """Name of the serving thread, followed by "-<port>"."""

    def __init__(self, api: ApiT, host: str, port: int) -> None:
        self._api = api
        self._host = host
        self._port = port
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve from a daemon thread."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError(f"{self.description} is already running")
            self._stopping = threading.Event()
            server = FakeServer(
                (self._host, self._port), self._api, self._stopping, self.handler_class
            )
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name}-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            self._api.root_url = self.root_url

    def stop(self) -> None:
        """Stop serving, drop open connections and close the socket. Safe to call twice."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._server = self._thread = None
            self._stopping.set()  # wakes requests held by a delay fault
            server.shutdown()
            server.drop_connections()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.description} is not running")
        return self._server.server_port

    @property
    def root_url(self) -> str:
        """Base URL without the API path, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API including its path (``/v1``, ``/api/v3``): what the bridge uses."""
        return self.root_url + self._api.api_prefix

    # ---- requests and faults ---------------------------------------------------------------

    def requests(self) -> list[RecordedRequest]:
        """Every API request received (not the admin calls), in arrival order."""
        return self._api.recorded()

    def inject_fault(self, fault: Fault) -> None:
        """Queue a fault; the first queued fault matching a request is applied to it.

        ``path_prefix`` may be given with or without the API prefix (``/v1``, ``/api/v3``).
        """
        self._api.add_fault(fault)

    def faults(self) -> list[Fault]:
        return self._api.fault_list()

    def clear_faults(self) -> None:
        self._api.clear_faults()

    def reset(self) -> None:
        """Forget recorded requests, faults and the fake's own data."""
        self._api.reset()


def serve_until_signalled(service: FakeService[Any], title: str, details: str) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM, saying so on stdout.

    Prints "<title> listening on <url>", then "  <details>; state: <admin state URL>" and, once
    stopped, "<title> stopped".
    """
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous_term = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    try:
        service.start()
        print(f"{title} listening on {service.url}", flush=True)
        state = f"{service.root_url}{service._api.admin_prefix}/state"
        print(f"  {details}; state: {state}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        service.stop()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    print(f"{title} stopped", flush=True)
    return 0
