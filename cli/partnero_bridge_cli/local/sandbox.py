"""Local stand-in for Partnero's REST API, used by the local stack and the tests.

The real Partnero API cannot be reached from a developer machine or CI (it needs a live program
and its API key, and every call would create real customers and commissions), so the bridge is
pointed at this sandbox instead (``PARTNERO_API_URL=<sandbox.url>``). It follows Partnero's
documented behaviour as summarised for this project:

* ``Authorization: Bearer <api key>`` on every ``/v1`` call, ``401 {"message": "Unauthenticated."}``
  otherwise;
* success envelope ``{"data": ..., "status": 1}``, lists add ``links`` and ``meta``;
* ``400 {"message": "Invalid partner key"}`` for an unknown partner, Laravel-style ``422``
  validation errors (including a duplicate customer key);
* transaction keys are NOT enforced unique: the same key twice creates two transactions (the
  trap the bridge must guard against), and deleting by key deletes all of them;
* amounts are kept exactly as the JSON text gave them (``decimal.Decimal``, never ``float``).

On top of the API it offers an admin interface under ``/_sandbox`` (no auth) so another process
can read and drive it, and fault injection (error statuses with ``Retry-After``, hangs, connection
resets, malformed bodies, and answers lost after Partnero accepted the request) so retries and
idempotency can be exercised.

Run it in the foreground with::

    python -m partnero_bridge_cli.local.sandbox --port 4010 --api-key K --partner demo-partner
"""

import argparse
import contextlib
import copy
import hmac
import json
import re
import signal
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = ["NO_ANSWER_STATUS", "Fault", "PartneroSandbox", "RecordedRequest", "main"]

API_PREFIX: Final = "/v1"
ADMIN_PREFIX: Final = "/_sandbox"
NO_ANSWER_STATUS: Final = 0
"""Status recorded for a request the sandbox answered by resetting the connection."""

_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
_MAX_LINE_BYTES: Final = 65537
_DEFAULT_PAGE_SIZE: Final = 10
_MAX_PAGE_SIZE: Final = 250
_MAX_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY_RE: Final = re.compile(r"^[A-Za-z]{3}$")
_MALFORMED_BODY: Final = (
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
)


# --------------------------------------------------------------------------------------------
# JSON helpers: Decimal in, Decimal out, no float rounding anywhere.
# --------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(raw: bytes) -> Any:
    """Parse a JSON body keeping every non-integer number as an exact ``Decimal``."""
    return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)


def _dumps(value: Any) -> str:
    """Serialise to compact JSON, writing ``Decimal`` values as plain JSON numbers."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite decimal cannot be written as JSON")
        return format(value, "f")
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key))}:{_dumps(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_from_timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received on its API (admin calls are not recorded)."""

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
    """Status the sandbox answered, or ``NO_ANSWER_STATUS`` (0) for a connection reset."""

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
    """A misbehaviour applied to the next matching ``/v1`` requests.

    At most one of ``status``, ``reset`` and ``malformed`` may be set. Without ``after_success``
    the request is not processed when one of them is set (nothing is stored); a fault with only
    ``delay_seconds``/``retry_after`` delays (or decorates) the normal answer. With
    ``after_success`` the request is processed normally first (the customer or transaction is
    stored) and the fault then replaces the answer: "Partnero accepted it but the answer was
    lost".
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
    """Matched against the path with or without the leading "/v1"."""
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

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request with this method and path."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_prefix is None:
            return True
        api_path = path[len(API_PREFIX) :] if _is_api_path(path) else path
        return path.startswith(self.path_prefix) or api_path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Fault":
        """Build a fault from its JSON form (as posted to ``/_sandbox/faults``)."""
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


# --------------------------------------------------------------------------------------------
# Errors, answers and validation
# --------------------------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def answer(self) -> _Answer:
        payload: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            payload["errors"] = self.errors
        return _Answer(self.status, payload, dict(self.headers))


def _ok(data: Any) -> _Answer:
    return _Answer(200, {"data": copy.deepcopy(data), "status": 1})


def _ok_empty() -> _Answer:
    return _Answer(200, {"status": 1})


class _Errors:
    """Collects Laravel-style validation errors: ``{"field": ["message", ...]}``."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.items.setdefault(name, []).append(message)

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def raise_if_any(self) -> None:
        if not self.items:
            return
        messages = [message for group in self.items.values() for message in group]
        more = len(messages) - 1
        text = messages[0]
        if more:
            text += f" (and {more} more error{'s' if more > 1 else ''})"
        raise _ApiError(422, text, errors=self.items)


def _as_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _ApiError(
            422,
            "The request body must be a JSON object.",
            errors={"body": ["The request body must be a JSON object."]},
        )
    return body


def _opt_str(
    errs: _Errors, data: Mapping[str, Any], name: str, label: str, max_len: int = 255
) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errs.add(label, f"The {label} field must be a string.")
        return None
    if len(value) > max_len:
        errs.add(label, f"The {label} field must not be greater than {max_len} characters.")
        return None
    return value


def _req_str(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    if data.get(name) is None or data.get(name) == "":
        errs.add(label, f"The {label} field is required.")
        return None
    return _opt_str(errs, data, name, label)


def _opt_email(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    value = _opt_str(errs, data, name, label)
    if value is not None and not _EMAIL_RE.match(value):
        errs.add(label, f"The {label} field must be a valid email address.")
        return None
    return value


def _opt_str_or_int(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _opt_str(errs, data, name, label)


def _opt_object(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.add(label, f"The {label} field must be an array.")
        return {}
    return value


def _opt_tags(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errs.add(label, f"The {label} field must be an array.")
        return []
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            errs.add(f"{label}.{index}", f"The {label}.{index} field must be a string.")
        else:
            tags.append(tag)
    return tags


def _opt_bool(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return value in (1, "1")
    errs.add(label, f"The {label} field must be true or false.")
    return False


def _amount(errs: _Errors, value: Any) -> int | Decimal | None:
    """A required number, kept exactly: ``int`` stays ``int``, anything else a ``Decimal``."""
    if value is None or value == "":
        errs.add("amount", "The amount field is required.")
        return None
    if isinstance(value, bool):
        errs.add("amount", "The amount field must be a number.")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):  # not produced by _loads; kept for direct callers
        value = Decimal(repr(value))
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            errs.add("amount", "The amount field must be a number.")
            return None
    if not isinstance(value, Decimal) or not value.is_finite():
        errs.add("amount", "The amount field must be a number.")
        return None
    return value


def _opt_units(errs: _Errors, data: Mapping[str, Any]) -> str | None:
    value = _opt_str(errs, data, "amount_units", "amount_units")
    if value is not None and value != "reward" and not _CURRENCY_RE.match(value):
        errs.add("amount_units", "The amount_units field must be a 3-letter currency code.")
        return None
    return value


def _opt_timestamp(errs: _Errors, data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errs.add(name, f"The {name} field must be an integer.")
        return None
    if not 0 <= value <= _MAX_TIMESTAMP:
        errs.add(name, f"The {name} field must be a valid Unix timestamp.")
        return None
    return value


def _partner_ref(errs: _Errors, value: Any, label: str) -> tuple[str, str] | None:
    """Validate a partner reference ``{key | id | email}``; return ``(kind, value)``."""
    if value is None:
        errs.add(label, f"The {label} field is required.")
        return None
    if not isinstance(value, dict):
        errs.add(label, f"The {label} field must be an array.")
        return None
    for kind in ("key", "id", "email"):
        item = value.get(kind)
        if item is None or item == "":
            continue
        if kind == "id" and isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            errs.add(f"{label}.{kind}", f"The {label}.{kind} field must be a string.")
            return None
        return kind, item
    errs.add(
        f"{label}.key",
        f"The {label}.key field is required when none of {label}.id / {label}.email are present.",
    )
    return None


# --------------------------------------------------------------------------------------------
# The API state and its routes
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    params: list[str]
    query: dict[str, str]
    body: Any
    path: str


_Route = Callable[[_Call], _Answer]


class _Slot:
    """Place of a request in the record, reserved on arrival and filled before answering."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: RecordedRequest | None = None


class _Api:
    """All sandbox state, guarded by one lock, and the request handling that works on it."""

    def __init__(self, api_key: str, partners: Iterable[str]) -> None:
        self.lock = threading.RLock()
        self.api_key = api_key
        self.root_url = ""
        self.partners: list[str] = []
        for partner in partners:
            self.add_partner(partner)
        self.customers: dict[str, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.records: list[_Slot] = []
        any_key = "*"
        self.routes: list[tuple[tuple[str, ...], dict[str, _Route]]] = [
            (("test",), {"GET": self.test}),
            (("customers",), {"GET": self.list_customers, "POST": self.create_customer}),
            (("customers:search",), {"GET": self.search_customers}),
            (
                ("customers", any_key),
                {
                    "GET": self.get_customer,
                    "PUT": self.update_customer,
                    "DELETE": self.delete_customer,
                },
            ),
            (("customers", any_key, "transactions"), {"GET": self.customer_transactions}),
            (("customers", any_key, "archive"), {"POST": self.archive_customer}),
            (
                ("transactions",),
                {
                    "GET": self.list_transactions,
                    "POST": self.create_transaction,
                    "DELETE": self.delete_transaction_by_body,
                },
            ),
            (
                ("transactions", any_key),
                {"GET": self.get_transaction, "DELETE": self.delete_transaction_by_path},
            ),
            (("transactions", any_key, "archive"), {"POST": self.archive_transaction}),
            (("transactions", any_key, "revoke-archive"), {"POST": self.revoke_archive}),
        ]

    # ---- state management (also used by the Python API) ----------------------------------

    def add_partner(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("a partner key must be a non-empty string")
        with self.lock:
            if key not in self.partners:
                self.partners.append(key)

    def reset(self) -> None:
        with self.lock:
            self.customers = {}
            self.transactions = []
            self.faults = []
            self.records = []

    def add_fault(self, fault: Fault) -> None:
        copied = Fault(**asdict(fault))
        with self.lock:
            self.faults.append(copied)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = []

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first queued fault that matches this API request."""
        if not _is_api_path(path):
            return None
        with self.lock:
            for index, fault in enumerate(self.faults):
                if not fault.matches(method, path):
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

    def customer_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.customers.values()))

    def transaction_list(self, include_deleted: bool) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(
                [t for t in self.transactions if include_deleted or not t["deleted"]]
            )

    # ---- admin interface -------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> _Answer:
        name = path[len(ADMIN_PREFIX) :].strip("/")
        allowed = {
            "state": ("GET",),
            "requests": ("GET",),
            "reset": ("POST",),
            "faults": ("GET", "POST", "DELETE"),
            "partners": ("GET", "POST"),
        }
        if name not in allowed:
            return _Answer(404, {"message": f"Unknown sandbox admin endpoint: {path}"})
        if method not in allowed[name]:
            return _Answer(
                405,
                {"message": f"The {method} method is not supported for {path}."},
                {"Allow": ", ".join(allowed[name])},
            )
        try:
            body = _loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _Answer(400, {"message": "Malformed JSON"})
        with self.lock:
            if name == "state":
                return _Answer(
                    200,
                    {
                        "customers": self.customer_list(),
                        "transactions": self.transaction_list(include_deleted=True),
                        "partners": list(self.partners),
                    },
                )
            if name == "requests":
                return _Answer(200, [record.to_json() for record in self.recorded()])
            if name == "reset":
                self.reset()
                return _Answer(200, {"ok": True})
            if name == "partners":
                if method == "POST":
                    key = body.get("key") if isinstance(body, dict) else None
                    if not isinstance(key, str) or not key:
                        return _Answer(400, {"message": 'Expected {"key": "<partner key>"}'})
                    self.add_partner(key)
                return _Answer(200, {"partners": list(self.partners)})
            # faults
            if method == "POST":
                items = body if isinstance(body, list) else [body]
                try:
                    new = [Fault.from_json(item) for item in items if isinstance(item, dict)]
                except (TypeError, ValueError) as error:
                    return _Answer(400, {"message": f"Invalid fault: {error}"})
                if len(new) != len(items) or not new:
                    return _Answer(400, {"message": "Expected a fault object or a list of them"})
                for fault in new:
                    self.add_fault(fault)
            elif method == "DELETE":
                self.clear_faults()
            return _Answer(200, {"faults": [fault.to_json() for fault in self.faults]})

    # ---- API entry point -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes
    ) -> _Answer:
        with self.lock:
            try:
                if not _is_api_path(path):
                    raise _ApiError(404, f"The route {path.lstrip('/') or '/'} could not be found.")
                self.authenticate(headers)
                route, params = self.resolve(method, path)
                try:
                    body = _loads(raw) if raw.strip() else None
                except (ValueError, UnicodeDecodeError, RecursionError):
                    raise _ApiError(400, "Malformed JSON") from None
                return route(_Call(params=params, query=query, body=body, path=path))
            except _ApiError as error:
                return error.answer()

    def authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )
        if not valid:
            raise _ApiError(401, "Unauthenticated.")

    def resolve(self, method: str, path: str) -> tuple[_Route, list[str]]:
        rest = path[len(API_PREFIX) :].strip("/")
        segments = [unquote(part) for part in rest.split("/")] if rest else []
        for pattern, methods in self.routes:
            if len(pattern) != len(segments):
                continue
            params: list[str] = []
            for expected, actual in zip(pattern, segments, strict=True):
                if expected == "*" and actual:
                    params.append(actual)
                elif expected != actual:
                    break
            else:
                if method in methods:
                    return methods[method], params
                if method == "HEAD" and "GET" in methods:  # like Laravel: HEAD follows GET
                    return methods["GET"], params
                supported = ", ".join(methods)
                raise _ApiError(
                    405,
                    f"The {method} method is not supported for route {path.lstrip('/')}. "
                    f"Supported methods: {supported}.",
                    headers={"Allow": supported},
                )
        raise _ApiError(404, f"The route {path.lstrip('/') or '/'} could not be found.")

    # ---- helpers ---------------------------------------------------------------------------

    def resolve_partner(self, ref: tuple[str, str]) -> str:
        """Return the partner key for a reference, or fail with 400 like Partnero does.

        Partners only have keys in the sandbox; a partner id is treated as its key and a
        partner email never matches.
        """
        kind, value = ref
        if kind in {"key", "id"} and value in self.partners:
            return value
        raise _ApiError(400, f"Invalid partner {kind}")

    def store_customer(
        self,
        key: str,
        partner_key: str,
        email: str | None = None,
        name: str | None = None,
        surname: str | None = None,
        tags: list[str] | None = None,
        referral_url: str | None = None,
    ) -> dict[str, Any]:
        customer: dict[str, Any] = {
            "key": key,
            "email": email,
            "name": name,
            "surname": surname,
            "tags": list(tags or []),
            "partner": {"key": partner_key},
            "referral_url": referral_url,
            "archived": False,
            "created_at": _now_iso(),
        }
        self.customers[key] = customer
        return customer

    def find_customer(self, key: str | None, email: str | None) -> dict[str, Any] | None:
        if key is not None:
            return self.customers.get(key)
        if email is not None:
            for customer in self.customers.values():
                if customer["email"] is not None and customer["email"].lower() == email.lower():
                    return customer
        return None

    def customer_or_404(self, key: str) -> dict[str, Any]:
        customer = self.customers.get(key)
        if customer is None:
            raise _ApiError(404, "Customer not found")
        return customer

    def live_transactions(self, key: str) -> list[dict[str, Any]]:
        return [t for t in self.transactions if t["key"] == key and not t["deleted"]]

    def page(self, items: list[dict[str, Any]], call: _Call) -> _Answer:
        limit = self.query_int(call.query, "limit", _DEFAULT_PAGE_SIZE, 1, _MAX_PAGE_SIZE)
        page = self.query_int(call.query, "page", 1, 1, 10**9)
        total = len(items)
        last_page = max(1, -(-total // limit))
        start = (page - 1) * limit
        chunk = items[start : start + limit]
        base = f"{self.root_url}{call.path}"

        def link(number: int) -> str:
            return f"{base}?{urlencode({**call.query, 'page': str(number)})}"

        return _Answer(
            200,
            {
                "data": copy.deepcopy(chunk),
                "links": {
                    "first": link(1),
                    "last": link(last_page),
                    "prev": link(page - 1) if page > 1 else None,
                    "next": link(page + 1) if page < last_page else None,
                },
                "meta": {
                    "current_page": page,
                    "from": start + 1 if chunk else None,
                    "last_page": last_page,
                    "path": base,
                    "per_page": limit,
                    "to": start + len(chunk) if chunk else None,
                    "total": total,
                },
                "status": 1,
            },
        )

    @staticmethod
    def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
        text = query.get(name)
        if text is None or text == "":
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            message = f"The {name} field must be an integer between {low} and {high}."
            raise _ApiError(422, message, errors={name: [message]})
        return int(text)

    # ---- routes ----------------------------------------------------------------------------

    def test(self, call: _Call) -> _Answer:
        return _ok_empty()

    def list_customers(self, call: _Call) -> _Answer:
        return self.page(list(self.customers.values()), call)

    def search_customers(self, call: _Call) -> _Answer:
        email = call.query.get("email")
        if not email:
            message = "The email field is required."
            raise _ApiError(422, message, errors={"email": [message]})
        found = [
            c
            for c in self.customers.values()
            if c["email"] is not None and c["email"].lower() == email.lower()
        ]
        return self.page(found, call)

    def create_customer(self, call: _Call) -> _Answer:
        data = _as_object(call.body)
        errs = _Errors()
        ref = _partner_ref(errs, data.get("partner"), "partner")
        key = _req_str(errs, data, "key", "key")
        email = _opt_email(errs, data, "email", "email")
        name = _opt_str(errs, data, "name", "name")
        surname = _opt_str(errs, data, "surname", "surname")
        tags = _opt_tags(errs, data, "tags", "tags")
        options = _opt_object(errs, data, "options", "options")
        referral_url = _opt_str(errs, options, "referral_url", "options.referral_url", 2048)
        if key is not None and key in self.customers:
            errs.add("key", "Customer with this key already exists")
        errs.raise_if_any()
        assert key is not None
        assert ref is not None
        customer = self.store_customer(
            key=key,
            partner_key=self.resolve_partner(ref),
            email=email,
            name=name,
            surname=surname,
            tags=tags,
            referral_url=referral_url,
        )
        return _ok(customer)

    def get_customer(self, call: _Call) -> _Answer:
        return _ok(self.customer_or_404(call.params[0]))

    def update_customer(self, call: _Call) -> _Answer:
        customer = self.customer_or_404(call.params[0])
        data = _as_object(call.body)
        errs = _Errors()
        update = data.get("update")
        if not isinstance(update, dict):
            verb = "is required" if update is None else "must be an array"
            errs.add("update", f"The update field {verb}.")
            errs.raise_if_any()
        assert isinstance(update, dict)
        changes: dict[str, Any] = {}
        if "key" in update:
            new_key = _req_str(errs, update, "key", "update.key")
            if new_key is not None and new_key != customer["key"] and new_key in self.customers:
                errs.add("update.key", "Customer with this key already exists")
            changes["key"] = new_key
        if "email" in update:
            changes["email"] = _opt_email(errs, update, "email", "update.email")
        for name in ("name", "surname"):
            if name in update:
                changes[name] = _opt_str(errs, update, name, f"update.{name}")
        if "tags" in update:
            changes["tags"] = _opt_tags(errs, update, "tags", "update.tags")
        if "options" in update:
            options = _opt_object(errs, update, "options", "update.options")
            if "referral_url" in options:
                changes["referral_url"] = _opt_str(
                    errs, options, "referral_url", "update.options.referral_url", 2048
                )
        errs.raise_if_any()
        old_key = customer["key"]
        customer.update(changes)
        if customer["key"] != old_key:
            self.customers = {
                (customer["key"] if k == old_key else k): v for k, v in self.customers.items()
            }
            for transaction in self.transactions:
                if transaction["customer"]["key"] == old_key:
                    transaction["customer"]["key"] = customer["key"]
        return _ok(customer)

    def delete_customer(self, call: _Call) -> _Answer:
        key = call.params[0]
        self.customer_or_404(key)
        del self.customers[key]
        now = _now_iso()
        for transaction in self.transactions:
            if transaction["customer"]["key"] == key and not transaction["deleted"]:
                transaction["deleted"] = True
                transaction["deleted_at"] = now
        return _ok_empty()

    def archive_customer(self, call: _Call) -> _Answer:
        customer = self.customer_or_404(call.params[0])
        customer["archived"] = True
        return _ok(customer)

    def customer_transactions(self, call: _Call) -> _Answer:
        key = self.customer_or_404(call.params[0])["key"]
        items = [t for t in self.transactions if t["customer"]["key"] == key and not t["deleted"]]
        return self.page(items, call)

    def create_transaction(self, call: _Call) -> _Answer:
        data = _as_object(call.body)
        errs = _Errors()
        customer_data: dict[str, Any] = {}
        raw_customer = data.get("customer")
        if raw_customer is None:
            errs.add("customer", "The customer field is required.")
        elif not isinstance(raw_customer, dict):
            errs.add("customer", "The customer field must be an array.")
        else:
            customer_data = raw_customer
        customer_key = _opt_str(errs, customer_data, "key", "customer.key")
        customer_email = _opt_email(errs, customer_data, "email", "customer.email")
        customer_name = _opt_str(errs, customer_data, "name", "customer.name")
        customer_surname = _opt_str(errs, customer_data, "surname", "customer.surname")
        if (
            isinstance(raw_customer, dict)
            and customer_key is None
            and customer_email is None
            and "customer.key" not in errs
            and "customer.email" not in errs
        ):
            errs.add(
                "customer.key",
                "The customer.key field is required when customer.email is not present.",
            )
        key = _opt_str(errs, data, "key", "key")
        amount = _amount(errs, data.get("amount"))
        amount_units = _opt_units(errs, data)
        action = _opt_str(errs, data, "action", "action")
        product_id = _opt_str_or_int(errs, data, "product_id", "product_id")
        product_type = _opt_str(errs, data, "product_type", "product_type")
        created_at = _opt_timestamp(errs, data, "created_at")
        options = _opt_object(errs, data, "options", "options")
        create = _opt_bool(errs, options, "create_customer", "options.create_customer")
        partner_ref: tuple[str, str] | None = None
        if create:
            # Current docs: customer.partner.key; legacy docs: partner.key at the top level.
            if customer_data.get("partner") is not None:
                partner_ref = _partner_ref(errs, customer_data["partner"], "customer.partner")
            elif data.get("partner") is not None:
                partner_ref = _partner_ref(errs, data["partner"], "partner")
        errs.raise_if_any()

        customer = self.find_customer(customer_key, customer_email)
        if customer is None:
            if not create:
                label = "customer.key" if customer_key is not None else "customer.email"
                raise _ApiError(422, "Customer not found", errors={label: ["Customer not found"]})
            if partner_ref is None:
                message = (
                    "The customer.partner.key field is required when "
                    "options.create_customer is true."
                )
                raise _ApiError(422, message, errors={"customer.partner.key": [message]})
            new_key = customer_key if customer_key is not None else customer_email
            assert new_key is not None
            customer = self.store_customer(
                key=new_key,
                partner_key=self.resolve_partner(partner_ref),
                email=customer_email,
                name=customer_name,
                surname=customer_surname,
            )
        transaction: dict[str, Any] = {
            "key": key,
            "amount": amount,
            "amount_units": amount_units,
            "customer": {"key": customer["key"]},
            "partner": {"key": customer["partner"]["key"]},
            "action": action,
            "product_id": product_id,
            "product_type": product_type,
            "created_at": _iso_from_timestamp(created_at) if created_at is not None else _now_iso(),
            "archived": False,
            "deleted": False,
        }
        self.transactions.append(transaction)
        return _ok(transaction)

    def list_transactions(self, call: _Call) -> _Answer:
        key = call.query.get("key")
        items = [
            t for t in self.transactions if not t["deleted"] and (key is None or t["key"] == key)
        ]
        return self.page(items, call)

    def get_transaction(self, call: _Call) -> _Answer:
        matches = self.live_transactions(call.params[0])
        if not matches:
            raise _ApiError(404, "Transaction not found")
        return _ok(matches[0])

    def delete_by_key(self, key: str) -> _Answer:
        matches = self.live_transactions(key)
        if not matches:
            raise _ApiError(404, "Transaction not found")
        now = _now_iso()
        for transaction in matches:
            transaction["deleted"] = True
            transaction["deleted_at"] = now
        return _ok_empty()

    def delete_transaction_by_path(self, call: _Call) -> _Answer:
        return self.delete_by_key(call.params[0])

    def delete_transaction_by_body(self, call: _Call) -> _Answer:
        data = _as_object(call.body)
        errs = _Errors()
        key = _req_str(errs, data, "key", "key")
        errs.raise_if_any()
        assert key is not None
        return self.delete_by_key(key)

    def set_archived(self, key: str, archived: bool) -> _Answer:
        matches = self.live_transactions(key)
        if not matches:
            raise _ApiError(404, "Transaction not found")
        for transaction in matches:
            transaction["archived"] = archived
        return _ok(matches[0])

    def archive_transaction(self, call: _Call) -> _Answer:
        return self.set_archived(call.params[0], True)

    def revoke_archive(self, call: _Call) -> _Answer:
        return self.set_archived(call.params[0], False)


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: _Api, stopping: threading.Event) -> None:
        self.api = api
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PartneroSandbox/1.0"
    # Headers and body go out in separate writes: without TCP_NODELAY every answer would wait
    # for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    @property
    def sandbox_server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        self.sandbox_server.track(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.sandbox_server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines http.server writes to stderr."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, unsupported method) with JSON."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.send_raw(code, _dumps({"message": message or phrase}).encode(), {})

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
        content_type: str = "application/json",
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
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

    def send_answer(self, answer: _Answer) -> None:
        body = b"" if answer.payload is None else _dumps(answer.payload).encode()
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
        api = self.sandbox_server.api
        if _is_admin_path(path):
            self.send_answer(api.admin(method, path, raw))
            return

        slot = api.reserve_slot()
        try:
            body = _loads(raw) if raw.strip() else None
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
        if fault.delay_seconds > 0 and self.sandbox_server.stopping.wait(fault.delay_seconds):
            record(NO_ANSWER_STATUS)  # the sandbox is stopping: drop the connection
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
            message = "Too Many Attempts." if fault.status == 429 else _phrase(fault.status)
            answer = _Answer(fault.status, {"message": message})
        elif processed is not None:
            answer = processed
        else:  # a pure delay: handle the request now, after the hang
            answer = api.handle(method, path, query, headers, raw)
        answer.headers.update(extra)
        record(answer.status)
        self.send_answer(answer)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Sandbox fault"


# --------------------------------------------------------------------------------------------
# Public sandbox
# --------------------------------------------------------------------------------------------


class PartneroSandbox:
    """An in-process fake Partnero API served over HTTP from a daemon thread.

    >>> with PartneroSandbox(api_key="k", partners=["p1"]) as sandbox:  # doctest: +SKIP
    ...     os.environ["PARTNERO_API_URL"] = sandbox.url
    """

    def __init__(
        self,
        api_key: str = "sandbox-key",
        partners: Iterable[str] = ("demo-partner",),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self._api = _Api(api_key, partners)
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the sandbox is already running")
            self._stopping = threading.Event()
            server = _Server((self._host, self._port), self._api, self._stopping)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"partnero-sandbox-{server.server_port}",
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
            self._stopping.set()  # wakes requests hanging in a delay fault
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
            raise RuntimeError("the sandbox is not running")
        return self._server.server_port

    @property
    def root_url(self) -> str:
        """Base URL without the API version, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API including ``/v1``: the value for ``PARTNERO_API_URL``."""
        return self.root_url + API_PREFIX

    @property
    def api_key(self) -> str:
        return self._api.api_key

    # ---- state -----------------------------------------------------------------------------

    def add_partner(self, key: str) -> None:
        self._api.add_partner(key)

    def partners(self) -> list[str]:
        with self._api.lock:
            return list(self._api.partners)

    def requests(self) -> list[RecordedRequest]:
        """Every API request received (not the ``/_sandbox`` admin calls), in arrival order."""
        return self._api.recorded()

    def customers(self) -> list[dict[str, Any]]:
        return self._api.customer_list()

    def transactions(self, include_deleted: bool = True) -> list[dict[str, Any]]:
        return self._api.transaction_list(include_deleted)

    def inject_fault(self, fault: Fault) -> None:
        """Queue a fault; the first queued fault matching a request is applied to it."""
        self._api.add_fault(fault)

    def faults(self) -> list[Fault]:
        with self._api.lock:
            return [Fault(**asdict(fault)) for fault in self._api.faults]

    def clear_faults(self) -> None:
        self._api.clear_faults()

    def reset(self) -> None:
        """Forget customers, transactions, recorded requests and faults."""
        self._api.reset()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m partnero_bridge_cli.local.sandbox",
        description="Local stand-in for Partnero's REST API (for the local stack and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=4010, help="port to bind (0 = any free port)")
    parser.add_argument("--api-key", default="sandbox-key", help="the accepted Bearer API key")
    parser.add_argument(
        "--partner",
        action="append",
        dest="partners",
        metavar="KEY",
        help="a valid partner key (repeatable; default: demo-partner)",
    )
    args = parser.parse_args(argv)
    partners: list[str] = args.partners or ["demo-partner"]

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous_term = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    sandbox = PartneroSandbox(
        api_key=args.api_key, partners=partners, host=args.host, port=args.port
    )
    try:
        sandbox.start()
        print(f"Partnero sandbox listening on {sandbox.url}", flush=True)
        admin = f"{sandbox.root_url}{ADMIN_PREFIX}/state"
        print(f"  partners: {', '.join(partners)}; state: {admin}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    print("Partnero sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
