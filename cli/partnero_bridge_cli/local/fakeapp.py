"""What the local fakes (Partnero sandbox, Ecwid, Stripe) share, on Werkzeug.

A fake is a :class:`FakeApp` (a WSGI application: its API under ``api_prefix``, an admin
interface without auth under ``admin_prefix``) wrapped by a :class:`FakeService` that serves
it from a daemon thread. The base records every API request in arrival order (admin calls
are not recorded), applies queued :class:`Fault` s to API requests, and offers the admin
endpoints every fake has: ``GET state``, ``GET requests``, ``POST reset`` and ``GET|POST|DELETE
faults``. Admin errors are ``{"message": ...}`` (404 unknown, 405 wrong method, 400 bad input).

JSON is read and written with exact numbers: every non-integer number is a ``Decimal`` and is
written back with the same digits, never through ``float``.
"""

import argparse
import contextlib
import json
import math
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import Any, ClassVar, Final, Self
from urllib.parse import quote, unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

NO_ANSWER_STATUS: Final = 0
"""Status recorded for a request a fake answered by dropping the connection."""

_MALFORMED_BODY: Final = b"<html><title>502 Bad Gateway</title><body>upstream error</body></html>"
_DROP_KEY: Final = "fake.drop_connection"


# ---- JSON with exact numbers ---------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """Parse JSON; every non-integer number becomes a ``Decimal`` with the digits it was given."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(raw, parse_float=Decimal, parse_constant=refuse)


def dumps(value: Any) -> str:
    """Compact JSON; a ``Decimal`` is written as a plain number with exactly its digits."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinities cannot be written as JSON")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, allow_nan=False)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(payload), status, dict(headers or {}), content_type="application/json")


def phrase(status: int, default: str) -> str:
    """The standard reason phrase of a status, or ``default`` for a status without one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return default


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


# ---- recorded requests and faults ----------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received on its API (admin calls are not recorded)."""

    method: str
    path: str
    """Path as received (still percent-encoded), without the query string."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """Parsed JSON body (non-integer numbers as ``Decimal``), or None if empty or not JSON."""
    status: int
    """Status the fake answered, or ``NO_ANSWER_STATUS`` (0) for a dropped connection."""

    def to_json(self) -> dict[str, Any]:
        """As ``GET <admin>/requests`` lists it: the API key or token masked."""
        masked = {"authorization": "Bearer ***"} if "authorization" in self.headers else {}
        query = {k: ("***" if k == "token" else v) for k, v in self.query.items()}
        return asdict(self) | {"headers": self.headers | masked, "query": query}


class Fault(BaseModel):
    """A misbehaviour applied to the next matching API requests of a fake.

    At most one of ``status``, ``reset`` (drop the connection) and ``malformed`` (200 with an
    HTML body). Without ``after_success`` the request is not processed when one is set; a
    fault with only ``delay_seconds``/``retry_after`` delays (or decorates) the normal answer.
    With ``after_success`` the request is processed first and the fault then replaces the
    answer: "the request was accepted but the answer was lost".
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    status: int | None = Field(None, ge=100, le=599)
    retry_after: str | None = None
    delay_seconds: float = Field(0, ge=0)
    reset: bool = False
    malformed: bool = False
    count: int = 1
    """How many requests it applies to; -1 means until cleared."""
    method: str | None = None
    path_prefix: str | None = None
    """Matched against the path with or without the fake's API prefix (``/v1``, ``/api/v3``)."""
    after_success: bool = False

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.count != -1 and self.count < 1:
            raise ValueError("count must be -1 (until cleared) or at least 1")
        outcomes = [self.status is not None, self.reset, self.malformed]
        if sum(outcomes) > 1:
            raise ValueError("set at most one of status, reset and malformed")
        if not any(outcomes) and self.delay_seconds == 0 and self.retry_after is None:
            raise ValueError("the fault does nothing: set status, reset, malformed or a delay")
        return self

    def matches(self, method: str, path: str, api_prefix: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_prefix is None:
            return True
        api_path = path[len(api_prefix) :] if under(path, api_prefix) else path
        return path.startswith(self.path_prefix) or api_path.startswith(self.path_prefix)


class SlidingWindowLimit:
    """At most ``limit`` admitted requests per key in any ``window_seconds`` (monotonic clock).

    Refused requests are not counted, so a caller that backs off as told gets through.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit, self.window = limit, window_seconds
        self._admitted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> int | None:
        """Count one request: None when admitted, else the whole seconds to wait (at least 1)."""
        now = time.monotonic()
        with self._lock:
            times = self._admitted.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return None
            return max(1, math.ceil(times[0] + self.window - now))


class RateSetting:
    """A fake's optional rate limit as its admin ``settings`` show and change it:
    ``{name: <requests per window_seconds>}``, or ``{name: null}`` for none."""

    def __init__(self, name: str, window_seconds: float, value: int | None) -> None:
        self.name, self.window = name, window_seconds
        self.limit = self._parsed(value)

    def _parsed(self, value: Any) -> SlidingWindowLimit | None:
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError("a rate limit must be a whole number of requests (at least 1) or null")
        return None if value is None else SlidingWindowLimit(value, self.window)

    def admit(self, key: str) -> int | None:
        """None when admitted (or no limit is set), else the whole seconds to wait."""
        return None if self.limit is None else self.limit.admit(key)

    def json(self) -> dict[str, Any]:
        return {self.name: self.limit.limit if self.limit else None}

    def put(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) != {self.name}:
            raise ValueError(f'expected {{"{self.name}": <requests> or null}}')
        self.limit = self._parsed(body[self.name])
        return self.json()


# ---- the application base ------------------------------------------------------------------


class FakeApp:
    """A fake's state, guarded by one lock, and the WSGI application serving it.

    A subclass sets ``api_prefix`` and ``admin_prefix`` and implements :meth:`answer` (an API
    request), :meth:`fault_response` (an injected status in its error shape),
    :meth:`admin_state` and :meth:`clear` (forget its data); it may add admin endpoints
    (:meth:`admin_rules`: each endpoint is called with the parsed JSON body and the rule's
    arguments under the lock, and answers the JSON payload) and pages (:attr:`pages`).
    """

    api_prefix: ClassVar[str]
    admin_prefix: ClassVar[str]
    pages: ClassVar[Mapping[str, Callable[[], bytes]]] = {}

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.records: list[list[RecordedRequest]] = []
        self.stopping = threading.Event()
        self.root_url = ""
        rules = [
            Rule("/state", methods=["GET"], endpoint=lambda _: self.admin_state()),
            Rule("/requests", methods=["GET"], endpoint=lambda _: self.requests_json()),
            Rule("/reset", methods=["POST"], endpoint=self._admin_reset),
            Rule("/faults", methods=["GET"], endpoint=lambda _: self.faults_json()),
            Rule("/faults", methods=["POST"], endpoint=self._admin_add_faults),
            Rule("/faults", methods=["DELETE"], endpoint=self._admin_clear_faults),
            *self.admin_rules(),
        ]
        self.admin_map = Map(rules, strict_slashes=False)

    # ---- hooks -----------------------------------------------------------------------------

    def answer(self, request: Request, path: str) -> Response:
        raise NotImplementedError

    def fault_response(self, status: int) -> Response:
        raise NotImplementedError

    def admin_state(self) -> Any:
        raise NotImplementedError

    def clear(self) -> None:
        """Forget the fake's own data (what :meth:`reset` forgets besides requests and faults)."""

    def admin_rules(self) -> Iterable[Rule]:
        return ()

    # ---- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.faults, self.records = [], []
            self.clear()

    def recorded(self) -> list[RecordedRequest]:
        with self.lock:
            return [slot[0] for slot in self.records if slot]

    def requests_json(self) -> list[dict[str, Any]]:
        return [record.to_json() for record in self.recorded()]

    def add_faults(self, faults: Iterable[Fault]) -> None:
        with self.lock:
            self.faults += [fault.model_copy() for fault in faults]

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first queued fault that matches this API request."""
        if not under(path, self.api_prefix):
            return None
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(method, path, self.api_prefix):
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            del self.faults[index]
                    return fault
        return None

    # ---- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        # WSGI's PATH_INFO is decoded (a%2Fb reads a/b): the raw path, where the server gives it
        # (Werkzeug's RAW_URI, or :meth:`FakeService.transport` in process), keeps segments apart.
        raw = environ.get("RAW_URI") or quote(request.path)
        path = urlsplit(raw).path or "/"
        page = self.pages.get(path) if request.method in ("GET", "HEAD") else None
        if page is not None:
            html = page()
            response = Response(html, headers={"Cache-Control": "no-store"}, mimetype="text/html")
        elif under(path, self.admin_prefix):
            response = self.admin(request, path[len(self.admin_prefix) :] or "/")
        else:
            response = self.serve_api(request, path)
        return response(environ, start_response)

    def serve_api(self, request: Request, path: str) -> Response:
        slot: list[RecordedRequest] = []
        with self.lock:
            self.records.append(slot)
        try:
            body = loads(request.get_data()) if request.get_data().strip() else None
        except (ValueError, RecursionError):
            body = None
        query = request.args.to_dict()
        headers = {name.lower(): value for name, value in request.headers.items()}

        def record(status: int) -> None:
            with self.lock:
                slot.append(RecordedRequest(request.method, path, query, headers, body, status))

        fault = self.take_fault(request.method, path)
        if fault is None:
            response: Response | None = self.answer(request, path)
        else:
            response = self.faulty(fault, request, path)
        record(response.status_code if response is not None else NO_ANSWER_STATUS)
        if response is None:  # drop the connection: the peer gets a TCP reset
            drop = request.environ.get(_DROP_KEY)
            if drop is not None:
                drop()
            raise ConnectionResetError("fault: connection dropped")
        return response

    def faulty(self, fault: Fault, request: Request, path: str) -> Response | None:
        """The answer under a fault; None to drop the connection."""
        processed = self.answer(request, path) if fault.after_success else None
        if fault.delay_seconds > 0 and self.stopping.wait(fault.delay_seconds):
            return None  # the fake is stopping
        if fault.reset:
            return None
        if fault.malformed:
            response = Response(_MALFORMED_BODY, 200, mimetype="text/html")
        elif fault.status is not None:
            response = self.fault_response(fault.status)
        else:
            response = processed or self.answer(request, path)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    # ---- admin -----------------------------------------------------------------------------

    def admin(self, request: Request, rest: str) -> Response:
        try:
            endpoint, args = self.admin_map.bind("fake").match(rest, method=request.method)
        except NotFound:
            return json_response(404, {"message": f"Unknown admin endpoint: {request.path}"})
        except MethodNotAllowed as error:
            allowed = ", ".join(error.valid_methods or [])
            message = f"The {request.method} method is not supported for {request.path}."
            return json_response(405, {"message": message}, {"Allow": allowed})
        try:
            raw = request.get_data()
            body = loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            return json_response(400, {"message": "Malformed JSON"})
        with self.lock:
            try:
                return json_response(
                    200, endpoint(body, **{k: unquote(v) for k, v in args.items()})
                )
            except KeyError as error:
                return json_response(404, {"message": str(error.args[0] if error.args else error)})
            except (TypeError, ValueError) as error:
                return json_response(400, {"message": str(error)})

    def _admin_reset(self, _: Any) -> dict[str, bool]:
        self.reset()
        return {"ok": True}

    def faults_json(self) -> dict[str, Any]:
        return {"faults": [fault.model_dump() for fault in self.faults]}

    def _admin_add_faults(self, body: Any) -> dict[str, Any]:
        """One fault object or a list of them."""
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError("Expected a fault object or a list of them")
        try:
            self.add_faults([Fault.model_validate(item) for item in items])
        except ValueError as error:
            raise ValueError(f"Invalid fault: {error}") from None
        return self.faults_json()

    def _admin_clear_faults(self, _: Any) -> dict[str, Any]:
        self.faults = []
        return self.faults_json()


# ---- serving -------------------------------------------------------------------------------


class _RawPathTransport(httpx.WSGITransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw, app = request.url.raw_path.decode("ascii"), self.app

        def with_raw_path(environ: dict[str, Any], start_response: Any) -> Any:
            return app(environ | {"RAW_URI": raw}, start_response)

        return httpx.WSGITransport(app=with_raw_path).handle_request(request)


class _Handler(WSGIRequestHandler):
    # Headers and body go out in separate writes: without TCP_NODELAY every answer would wait
    # for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def make_environ(self) -> Any:
        environ = super().make_environ()
        environ[_DROP_KEY] = self.drop_connection
        return environ

    def drop_connection(self) -> None:
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

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access-log line per request: they would drown the stack's own output."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Silent: clients going away mid-answer are expected (timeouts, resets)."""


class FakeService[AppT: FakeApp]:
    """A fake served over HTTP from a daemon thread; subclasses add their Python API."""

    description: ClassVar[str]
    """How errors name the fake: "<description> is already running"."""

    def __init__(self, app: AppT, host: str, port: int) -> None:
        self._app, self._host, self._port = app, host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    def start(self) -> None:
        """Bind (port 0 picks a free port; a busy port raises ``OSError``) and serve."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError(f"{self.description} is already running")
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            # Bound here so a busy port is an OSError; a deep backlog lets bursts queue.
            listener = socket.create_server((self._host, self._port), family=family, backlog=256)
            try:
                port = listener.getsockname()[1]
                server = make_server(
                    self._host,
                    port,
                    self._app,
                    True,
                    request_handler=_Handler,
                    fd=listener.fileno(),
                )
            finally:
                listener.close()
            self._app.stopping = threading.Event()
            name = f"{type(self).__name__}-{port}"
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name)
            thread.daemon = True
            thread.start()
            self._server, self._thread = server, thread
            self._app.root_url = self.root_url

    def stop(self) -> None:
        """Stop serving and close the socket; requests held by a delay are dropped. Idempotent."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._server = self._thread = None
            self._app.stopping.set()
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
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
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """Base URL without the API path, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API including its path (``/v1``, ``/api/v3``): what the bridge uses."""
        return self.root_url + self._app.api_prefix

    @property
    def wsgi_app(self) -> FakeApp:
        """The fake as a WSGI application; to call it in process, prefer :meth:`transport`."""
        return self._app

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport calling the fake in process, answering as it does over HTTP:
        ``httpx.WSGITransport`` alone gives only the decoded path (no RAW_URI or REQUEST_URI),
        so ``/customers/a%2Fb`` would reach the fake as ``/customers/a/b``."""
        return _RawPathTransport(app=self._app)

    def requests(self) -> list[RecordedRequest]:
        """Every API request received (not the admin calls), in arrival order."""
        return self._app.recorded()

    def inject_fault(self, fault: Fault) -> None:
        """Queue a fault; the first queued fault matching a request is applied to it."""
        self._app.add_faults([fault])

    def faults(self) -> list[Fault]:
        with self._app.lock:
            return [fault.model_copy() for fault in self._app.faults]

    def clear_faults(self) -> None:
        with self._app.lock:
            self._app.faults = []

    def reset(self) -> None:
        """Forget recorded requests, faults and the fake's own data."""
        self._app.reset()


def cli_parser(name: str, description: str, port: int) -> argparse.ArgumentParser:
    """The command line of ``python -m partnero_bridge_cli.local.<name>``: host and port."""
    parser = argparse.ArgumentParser(
        f"python -m partnero_bridge_cli.local.{name}", None, description
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=port, help="port to bind (0: any free port)")
    return parser


def serve_until_signalled(service: FakeService[Any], title: str, details: str) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM: prints "<title> listening on <url>",
    "  <details>; state: <admin state URL>" and, once stopped, "<title> stopped"."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        print(f"{title} listening on {service.url}", flush=True)
        state = f"{service.root_url}{service.wsgi_app.admin_prefix}/state"
        print(f"  {details}; state: {state}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"{title} stopped", flush=True)
    return 0
