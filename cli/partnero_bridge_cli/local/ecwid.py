"""Local stand-in for Ecwid's REST API v3, used by the local stack and the tests.

The real Ecwid API cannot be reached from a developer machine or CI (it needs a live store on a
paid plan and that store's ``secret_...`` access token), so the bridge is pointed at this fake
instead (``ECWID_API_URL=<fake.url>``, i.e. ``http://127.0.0.1:<port>/api/v3``). It follows
Ecwid's documented behaviour as far as the bridge relies on it:

* ``GET /api/v3/{storeId}/orders/{orderId}`` answers the stored order exactly as it was stored:
  non-integer numbers are kept as ``decimal.Decimal`` and written back with the same digits,
  never through ``float``. An order is found by its public ``id`` (e.g. ``"K8XTQ"``) and by its
  ``internalId``;
* ``GET /api/v3/{storeId}/profile`` answers a small but realistically shaped store profile whose
  ``formatsAndUnits.currency`` is the store currency (orders themselves carry no currency);
* ``GET /api/v3/{storeId}/orders`` answers a simple search result (``ids``, ``email``,
  ``customerId``, ``paymentStatus``, ``fulfillmentStatus``, ``offset``, ``limit``); like Ecwid it
  leaves unfinished (``INCOMPLETE``) orders out unless ``paymentStatus`` asks for them;
* ``Authorization: Bearer <token>`` must carry the store's own token. A missing or wrong token, an
  unknown store and a token passed in the query string (no longer accepted by Ecwid) are all
  ``403 INVALID_API_TOKEN``; a suspended store is ``402 STORE_IS_SUSPENDED``; an unknown order is
  ``404 ORDER_NOT_FOUND``. Error bodies use Ecwid's shape
  ``{"errorMessage": "...", "errorCode": "..."}``.

Only reads are implemented: other methods on the API are ``405 METHOD_NOT_ALLOWED``.

On top of the API it offers an admin interface under ``/_ecwid`` (no auth, not recorded) so
another process can read and drive it (stores, orders, recorded requests, faults), and the same
fault injection as the Partnero sandbox (:class:`~partnero_bridge_cli.local.sandbox.Fault`:
error statuses with ``Retry-After``, hangs, connection resets, malformed bodies) so that rate
limits and outages can be exercised.

Run it in the foreground with::

    python -m partnero_bridge_cli.local.ecwid --port 4020 --store 1003:secret_token \\
        --order 1003:events/ecwid/orders/paid-with-partner.json
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from partnero_bridge_cli.local.sandbox import NO_ANSWER_STATUS, Fault, RecordedRequest

__all__ = [
    "ADMIN_PREFIX",
    "API_PREFIX",
    "NO_ANSWER_STATUS",
    "FakeEcwid",
    "Fault",
    "RecordedRequest",
    "currency_format",
    "main",
]

API_PREFIX: Final = "/api/v3"
ADMIN_PREFIX: Final = "/_ecwid"

_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
_MAX_LINE_BYTES: Final = 65537
_DEFAULT_SEARCH_LIMIT: Final = 100
_MAX_SEARCH_LIMIT: Final = 100
_STORE_ID_RE: Final = re.compile(r"^[1-9][0-9]{0,17}$")
_CURRENCY_RE: Final = re.compile(r"^[A-Za-z]{3}$")
_MASK: Final = "***"
_MALFORMED_BODY: Final = (
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
)

# Display formats for a few common currencies; anything else gets "<amount> CODE".
_CURRENCY_SYMBOLS: Final[Mapping[str, str]] = {
    "USD": "$",
    "CAD": "$",
    "AUD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "KRW": "₩",
}
_ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV"}
    | {"XAF", "XOF", "XPF"}
)
_THREE_DECIMAL_CURRENCIES: Final = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})

# errorCode values from Ecwid's "REST API error codes" page, used for injected status faults.
_FAULT_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("Wrong request parameter", "WRONG_PARAMETER"),
    402: ("Store with specified ID is currently suspended", "STORE_IS_SUSPENDED"),
    403: ("Invalid access token", "INVALID_API_TOKEN"),
    404: ("Order with specified ID was not found", "ORDER_NOT_FOUND"),
    408: ("Request failed due to timeout", "TIMEOUT"),
    429: ("Too many requests, rate limit exceeded", "RATE_LIMITED"),
    500: ("Internal server error", "INTERNAL_ERROR"),
}


def currency_format(currency: str) -> tuple[str, str, int]:
    """``(currencyPrefix, currencySuffix, currencyPrecision)`` the fake reports for a currency."""
    code = currency.upper()
    if code in _ZERO_DECIMAL_CURRENCIES:
        precision = 0
    elif code in _THREE_DECIMAL_CURRENCIES:
        precision = 3
    else:
        precision = 2
    symbol = _CURRENCY_SYMBOLS.get(code)
    if symbol is None:
        return "", f" {code}", precision
    return symbol, "", precision


# --------------------------------------------------------------------------------------------
# JSON with exact numbers
# --------------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(raw: bytes | str) -> Any:
    """Parse JSON; every non-integer number becomes a ``Decimal`` with the digits it was given."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


def _dumps(value: Any) -> str:
    """Compact JSON; a ``Decimal`` is written as a plain number with exactly its digits."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinities cannot be written as JSON")
        return format(value, "f")
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError("NaN cannot be written as JSON")
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(key))}:{_dumps(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _segments(rest: str) -> list[str]:
    rest = rest.strip("/")
    return [unquote(part) for part in rest.split("/")] if rest else []


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Fake Ecwid fault"


# --------------------------------------------------------------------------------------------
# Validation of what callers hand in
# --------------------------------------------------------------------------------------------


def _store_key(store_id: object) -> str:
    """Canonical form of a store id (``1003`` and ``"1003"`` are the same store)."""
    if isinstance(store_id, bool):
        raise ValueError("a store id must be a positive integer")
    text = str(store_id).strip() if isinstance(store_id, int | str) else ""
    if not _STORE_ID_RE.match(text):
        raise ValueError(f"a store id must be a positive integer, not {store_id!r}")
    return text


def _check_token(token: object) -> str:
    if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
        raise ValueError("a store token must be a non-empty string without spaces")
    return token


def _check_currency(currency: object) -> str:
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        raise ValueError("a currency must be a three-letter ISO 4217 code such as USD")
    return currency.upper()


def _order_key(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise ValueError(f"{what} must be a non-empty string or an integer")
    return str(value)


def _normalise_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of the order, numbers turned into exact ``Decimal``/``int`` values."""
    if not isinstance(order, Mapping):
        raise ValueError("an order must be a JSON object")
    copied = _loads(_dumps(order))
    if not isinstance(copied, dict):  # pragma: no cover - a Mapping always writes an object
        raise ValueError("an order must be a JSON object")
    if "id" not in copied:
        raise ValueError('an order needs its public "id" (e.g. "K8XTQ")')
    _order_key(copied["id"], 'the order "id"')
    if copied.get("internalId") is not None:
        _order_key(copied["internalId"], 'the order "internalId"')
    return cast(dict[str, Any], copied)


# --------------------------------------------------------------------------------------------
# Answers and errors
# --------------------------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _EcwidError(Exception):
    """An error answered in Ecwid's shape: ``{"errorMessage": ..., "errorCode": ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})

    def answer(self) -> _Answer:
        payload: dict[str, Any] = {"errorMessage": self.message}
        if self.code is not None:
            payload["errorCode"] = self.code
        return _Answer(self.status, payload, dict(self.headers))


def _admin_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, {"message": message}, dict(headers or {}))


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class _Store:
    store_id: str
    token: str
    currency: str
    suspended: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Orders by public id, in the order they were first stored."""
    aliases: dict[str, str] = field(default_factory=dict)
    """``str(internalId)`` -> public id."""

    def resolve(self, order_id: str) -> str | None:
        if order_id in self.orders:
            return order_id
        public = self.aliases.get(order_id)
        return public if public in self.orders else None

    def put(self, order: dict[str, Any]) -> str:
        public = str(order["id"])
        self._drop_aliases(public)
        self.orders[public] = order
        internal = order.get("internalId")
        if internal is not None:
            self.aliases[str(internal)] = public
        return public

    def remove(self, order_id: str) -> bool:
        public = self.resolve(order_id)
        if public is None:
            return False
        del self.orders[public]
        self._drop_aliases(public)
        return True

    def _drop_aliases(self, public: str) -> None:
        for alias in [alias for alias, target in self.aliases.items() if target == public]:
            del self.aliases[alias]

    def summary(self) -> dict[str, Any]:
        return {
            "storeId": int(self.store_id),
            "currency": self.currency,
            "suspended": self.suspended,
            "orders": [copy.deepcopy(order) for order in self.orders.values()],
        }


class _Slot:
    """Place of a request in the record, reserved on arrival and filled before answering."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: RecordedRequest | None = None


def _fault_applies(fault: Fault, method: str, path: str) -> bool:
    """Like ``Fault.matches`` but for Ecwid paths: a prefix may leave out ``/api/v3``."""
    if fault.method is not None and fault.method.upper() != method.upper():
        return False
    if fault.path_prefix is None:
        return True
    relative = path[len(API_PREFIX) :] if _is_api_path(path) else path
    return path.startswith(fault.path_prefix) or relative.startswith(fault.path_prefix)


def _request_json(record: RecordedRequest) -> dict[str, Any]:
    """A recorded request for the admin interface, with tokens masked wherever they were sent."""
    data = record.to_json()
    query = data["query"]
    if isinstance(query, dict) and "token" in query:
        query["token"] = _MASK
    return data


_Route = Callable[[_Store, list[str], dict[str, str]], _Answer]


class _Api:
    """All state of the fake, guarded by one lock, and the request handling that works on it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stores: dict[str, _Store] = {}
        self.faults: list[Fault] = []
        self.records: list[_Slot] = []

    # ---- state management (also used by the Python API) ----------------------------------

    def add_store(self, store_id: object, token: object, currency: object, suspended: bool) -> str:
        key = _store_key(store_id)
        checked_token = _check_token(token)
        checked_currency = _check_currency(currency)
        if not isinstance(suspended, bool):
            raise ValueError("suspended must be true or false")
        with self.lock:
            store = self.stores.get(key)
            if store is None:
                self.stores[key] = _Store(key, checked_token, checked_currency, suspended)
            else:
                store.token, store.currency, store.suspended = (
                    checked_token,
                    checked_currency,
                    suspended,
                )
        return key

    def store(self, store_id: object) -> _Store:
        key = _store_key(store_id)
        store = self.stores.get(key)
        if store is None:
            raise KeyError(f"unknown store {key}: add it first")
        return store

    def put_order(self, store_id: object, order: Mapping[str, Any]) -> str:
        normalised = _normalise_order(order)
        with self.lock:
            return self.store(store_id).put(normalised)

    def delete_order(self, store_id: object, order_id: object) -> None:
        key = _order_key(order_id, "an order id")
        with self.lock:
            if not self.store(store_id).remove(key):
                raise KeyError(f"store {_store_key(store_id)} has no order {key}")

    def get_order(self, store_id: object, order_id: object) -> dict[str, Any] | None:
        key = _order_key(order_id, "an order id")
        with self.lock:
            store = self.store(store_id)
            public = store.resolve(key)
            return None if public is None else copy.deepcopy(store.orders[public])

    def reset(self) -> None:
        """Forget orders, recorded requests and faults; stores and their tokens stay."""
        with self.lock:
            for store in self.stores.values():
                store.orders.clear()
                store.aliases.clear()
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
                if not _fault_applies(fault, method, path):
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

    # ---- admin interface -------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> _Answer:
        parts = _segments(path[len(ADMIN_PREFIX) :])
        if parts in (["state"], ["requests"]):
            allowed: tuple[str, ...] = ("GET",)
        elif parts == ["reset"]:
            allowed = ("POST",)
        elif parts == ["faults"]:
            allowed = ("GET", "POST", "DELETE")
        elif len(parts) == 2 and parts[0] == "stores":
            allowed = ("GET", "PUT")
        elif len(parts) == 4 and parts[0] == "stores" and parts[2] == "orders":
            allowed = ("GET", "PUT", "DELETE")
        else:
            return _admin_error(404, f"Unknown fake Ecwid admin endpoint: {path}")
        if method not in allowed:
            return _admin_error(
                405,
                f"The {method} method is not supported for {path}.",
                {"Allow": ", ".join(allowed)},
            )
        try:
            body = _loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _admin_error(400, "Malformed JSON")
        with self.lock:
            try:
                return self.admin_route(method, parts, body)
            except KeyError as error:
                return _admin_error(404, str(error.args[0]) if error.args else "Not found")
            except (TypeError, ValueError) as error:
                return _admin_error(400, str(error))

    def admin_route(self, method: str, parts: list[str], body: Any) -> _Answer:
        name = parts[0]
        if name == "state":
            return _Answer(
                200,
                {
                    "stores": [store.summary() for store in self.stores.values()],
                    "faults": [fault.to_json() for fault in self.faults],
                    "requestCount": len(self.recorded()),
                },
            )
        if name == "requests":
            return _Answer(200, [_request_json(record) for record in self.recorded()])
        if name == "reset":
            self.reset()
            return _Answer(200, {"ok": True})
        if name == "faults":
            if method == "POST":
                self.admin_add_faults(body)
            elif method == "DELETE":
                self.clear_faults()
            return _Answer(200, {"faults": [fault.to_json() for fault in self.faults]})
        if len(parts) == 2:
            if method == "PUT":
                self.admin_put_store(parts[1], body)
            summary = self.store(parts[1]).summary()
            del summary["orders"]
            return _Answer(200, summary)
        store_id, order_id = parts[1], parts[3]
        if method == "PUT":
            if not isinstance(body, dict):
                raise ValueError("Expected the order as a JSON object")
            order = dict(body)
            order.setdefault("id", order_id)
            if str(order["id"]) != order_id:
                raise ValueError(
                    f'The order "id" ({order["id"]}) differs from the one in the path ({order_id})'
                )
            self.put_order(store_id, order)
        elif method == "DELETE":
            self.delete_order(store_id, order_id)
            return _Answer(200, {"ok": True})
        found = self.get_order(store_id, order_id)
        if found is None:
            raise KeyError(f"store {_store_key(store_id)} has no order {order_id}")
        return _Answer(200, found)

    def admin_add_faults(self, body: Any) -> None:
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError("Expected a fault object or a list of them")
        try:
            new = [Fault.from_json(item) for item in items]
        except (TypeError, ValueError) as error:
            raise ValueError(f"Invalid fault: {error}") from None
        for fault in new:
            self.add_fault(fault)

    def admin_put_store(self, store_id: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise ValueError('Expected {"token": "secret_...", "currency": "USD"}')
        unknown = sorted(set(body) - {"token", "currency", "suspended"})
        if unknown:
            raise ValueError(f"Unknown store field(s): {', '.join(unknown)}")
        existing = self.stores.get(_store_key(store_id))
        token = body.get("token", existing.token if existing else None)
        if token is None:
            raise ValueError('A new store needs a "token"')
        currency = body.get("currency", existing.currency if existing else "USD")
        suspended = body.get("suspended", existing.suspended if existing else False)
        self.add_store(store_id, token, currency, suspended)

    # ---- API entry point -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> _Answer:
        with self.lock:
            try:
                if not _is_api_path(path):
                    raise _EcwidError(404, f"Resource not found: {path}")
                parts = _segments(path[len(API_PREFIX) :])
                if not parts:
                    raise _EcwidError(404, f"Resource not found: {path}")
                store = self.authenticate(parts[0], query, headers)
                route, params = self.resolve(method, parts[1:], path)
                if store.suspended:
                    raise _EcwidError(
                        402,
                        "Store with specified ID is currently suspended",
                        "STORE_IS_SUSPENDED",
                    )
                return route(store, params, dict(query))
            except _EcwidError as error:
                return error.answer()

    def authenticate(
        self, store_segment: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> _Store:
        try:
            store = self.stores.get(_store_key(store_segment))
        except ValueError:
            store = None
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        presented = scheme.lower() == "bearer" and bool(token)
        if store is not None and presented and hmac.compare_digest(token, store.token):
            return store
        if not presented and "token" in query:
            message = (
                "Access tokens in the query string are no longer accepted: "
                "send them in the 'Authorization: Bearer <token>' header"
            )
        elif not presented:
            message = "Access token is missing: send 'Authorization: Bearer <token>'"
        else:
            message = "Invalid access token for this store"
        raise _EcwidError(403, message, "INVALID_API_TOKEN")

    def resolve(self, method: str, rest: list[str], path: str) -> tuple[_Route, list[str]]:
        route: _Route
        params: list[str]
        if rest == ["profile"]:
            route, params = self.profile, []
        elif rest == ["orders"]:
            route, params = self.search_orders, []
        elif len(rest) == 2 and rest[0] == "orders" and rest[1]:
            route, params = self.order, [rest[1]]
        else:
            raise _EcwidError(404, f"Resource not found: {path}")
        if method not in ("GET", "HEAD"):
            raise _EcwidError(
                405,
                f"HTTP method {method} is not supported by this fake for {path}",
                "METHOD_NOT_ALLOWED",
                {"Allow": "GET, HEAD"},
            )
        return route, params

    # ---- endpoints ---------------------------------------------------------------------------

    def order(self, store: _Store, params: list[str], query: dict[str, str]) -> _Answer:
        public = store.resolve(params[0])
        if public is None:
            raise _EcwidError(404, f"Order #{params[0]} not found", "ORDER_NOT_FOUND")
        return _Answer(200, copy.deepcopy(store.orders[public]))

    def search_orders(self, store: _Store, params: list[str], query: dict[str, str]) -> _Answer:
        offset = self.query_int(query, "offset", 0, 0, 10**9)
        limit = self.query_int(query, "limit", _DEFAULT_SEARCH_LIMIT, 1, _MAX_SEARCH_LIMIT)

        def wanted(name: str, upper: bool = True) -> set[str] | None:
            raw = query.get(name, "").strip()
            if not raw:
                return None
            values = {item.strip() for item in raw.split(",") if item.strip()}
            return {value.upper() for value in values} if upper else values

        ids = wanted("ids", upper=False)
        payment = wanted("paymentStatus")
        fulfillment = wanted("fulfillmentStatus")
        email = query.get("email", "").strip().lower() or None
        customer = query.get("customerId", "").strip() or None

        found: list[dict[str, Any]] = []
        for public, order in store.orders.items():
            internal = order.get("internalId")
            if ids is not None and public not in ids and str(internal) not in ids:
                continue
            status = str(order.get("paymentStatus", ""))
            if payment is None and status == "INCOMPLETE":
                continue
            if payment is not None and status not in payment:
                continue
            if fulfillment is not None and str(order.get("fulfillmentStatus")) not in fulfillment:
                continue
            if email is not None and str(order.get("email", "")).lower() != email:
                continue
            if customer is not None and str(order.get("customerId")) != customer:
                continue
            found.append(order)
        page = [copy.deepcopy(order) for order in found[offset : offset + limit]]
        return _Answer(
            200,
            {
                "total": len(found),
                "count": len(page),
                "offset": offset,
                "limit": limit,
                "items": page,
            },
        )

    def profile(self, store: _Store, params: list[str], query: dict[str, str]) -> _Answer:
        prefix, suffix, precision = currency_format(store.currency)
        store_id = int(store.store_id)
        site = f"https://store{store_id}.company.site"
        return _Answer(
            200,
            {
                "generalInfo": {
                    "storeId": store_id,
                    "storeUrl": f"{site}/products",
                    "websitePlatform": "instantsite",
                    "starterSite": {
                        "ecwidSubdomain": f"store{store_id}",
                        "generatedUrl": site,
                        "ecwidSubdomainSuffix": "company.site",
                    },
                },
                "account": {
                    "accountName": f"Store {store_id}",
                    "accountNickName": f"store{store_id}",
                    "accountEmail": f"owner@store{store_id}.example.com",
                    "whiteLabel": False,
                    "brandName": "Ecwid",
                    "suspended": store.suspended,
                },
                "settings": {"closed": False, "storeName": f"Store {store_id}"},
                "formatsAndUnits": {
                    "currency": store.currency,
                    "currencyPrefix": prefix,
                    "currencySuffix": suffix,
                    "currencyGroupSeparator": ",",
                    "currencyDecimalSeparator": ".",
                    "currencyPrecision": precision,
                    "currencyTruncateZeroFractional": False,
                    "currencyRate": 1,
                    "weightUnit": "KILOGRAM",
                    "weightGroupSeparator": ",",
                    "weightDecimalSeparator": ".",
                    "weightTruncateZeroFractional": False,
                    "timeFormat": "hh:mm a",
                    "dateFormat": "MMM d, yyyy",
                    "timezone": "UTC",
                    "dimensionsUnit": "CM",
                    "orderNumberPrefix": "",
                    "orderNumberSuffix": "",
                },
                "languages": {"enabledLanguages": ["en"], "defaultLanguage": "en"},
            },
        )

    @staticmethod
    def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise _EcwidError(
                400,
                f"Wrong parameter '{name}' value: expected a number from {low} to {high}",
                "WRONG_PARAMETER",
            )
        return value


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: _Api, stopping: threading.Event) -> None:
        self.api = api
        self.stopping = stopping
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can be slow: bind only.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients hanging up mid-answer are expected (timeouts, resets)."""

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def drop_connections(self) -> None:
        """Shut down kept-alive connections so that their handler threads end."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeEcwid/1.0"
    sys_version = ""
    # Headers and body are written separately: without TCP_NODELAY each answer would wait for
    # the client's delayed ACK.
    disable_nagle_algorithm = True

    @property
    def fake(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        self.fake.track(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.fake.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request log lines on stderr."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unknown method) in Ecwid's error shape."""
        self.close_connection = True
        self.send_raw(code, _dumps({"errorMessage": message or _phrase(code)}).encode(), {})

    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
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

    # ---- plumbing --------------------------------------------------------------------------

    def read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None if it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunks()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        try:
            length = int(declared)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY_BYTES:
            return None
        data = self.rfile.read(length) if length else b""
        return data if len(data) == length else None

    def read_chunks(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE_BYTES)
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

    def send_raw(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
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
        """Close without an answer; SO_LINGER 0 makes the peer see a TCP reset."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered reader keeps the socket referenced: close it first so that closing the
        # socket really releases the descriptor now.
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
        api = self.fake.api
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
            answer = api.handle(method, path, query, headers)
            record(answer.status)
            self.send_answer(answer)
            return

        processed = api.handle(method, path, query, headers) if fault.after_success else None
        if fault.delay_seconds > 0 and self.fake.stopping.wait(fault.delay_seconds):
            record(NO_ANSWER_STATUS)  # stopping: drop the connection instead of answering
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
            message, code = _FAULT_ERRORS.get(fault.status, (_phrase(fault.status), None))
            answer = _EcwidError(fault.status, message, code).answer()
        elif processed is not None:
            answer = processed
        else:  # only a delay (and maybe Retry-After): answer normally, late
            answer = api.handle(method, path, query, headers)
        answer.headers.update(extra)
        record(answer.status)
        self.send_answer(answer)


# --------------------------------------------------------------------------------------------
# Public fake
# --------------------------------------------------------------------------------------------


class FakeEcwid:
    """An in-process fake of Ecwid's REST API v3, served over HTTP from a daemon thread.

    >>> with FakeEcwid({1003: "secret_token"}) as ecwid:  # doctest: +SKIP
    ...     ecwid.put_order(1003, order)
    ...     os.environ["ECWID_API_URL"] = ecwid.url
    """

    def __init__(
        self,
        stores: Mapping[int | str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._api = _Api()
        for store_id, token in (stores or {}).items():
            self.add_store(store_id, token)
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve from a daemon thread."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the fake Ecwid API is already running")
            self._stopping = threading.Event()
            server = _Server((self._host, self._port), self._api, self._stopping)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-ecwid-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

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
            raise RuntimeError("the fake Ecwid API is not running")
        return self._server.server_port

    @property
    def root_url(self) -> str:
        """Base URL without the API path, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API, ``.../api/v3``: the value for ``ECWID_API_URL``."""
        return self.root_url + API_PREFIX

    # ---- stores and orders -----------------------------------------------------------------

    def add_store(
        self, store_id: int | str, token: str, currency: str = "USD", suspended: bool = False
    ) -> None:
        """Add a store, or change the token, currency or suspension of a known one."""
        self._api.add_store(store_id, token, currency, suspended)

    def put_order(self, store_id: int | str, order: Mapping[str, Any]) -> None:
        """Store (or replace) an order, reachable by ``order["id"]`` and its ``internalId``.

        Floats are kept by their shortest text (``71.39`` stays ``71.39``); to control the
        digits exactly pass ``decimal.Decimal`` values or set the order over HTTP.
        """
        self._api.put_order(store_id, order)

    def delete_order(self, store_id: int | str, order_id: int | str) -> None:
        """Remove an order (by public id or internalId); ``KeyError`` if there is none."""
        self._api.delete_order(store_id, order_id)

    def order(self, store_id: int | str, order_id: int | str) -> dict[str, Any] | None:
        """A copy of a stored order, or None."""
        return self._api.get_order(store_id, order_id)

    def orders(self, store_id: int | str) -> list[dict[str, Any]]:
        """Copies of every order of a store, in the order they were first stored."""
        with self._api.lock:
            return [copy.deepcopy(order) for order in self._api.store(store_id).orders.values()]

    # ---- requests and faults ---------------------------------------------------------------

    def requests(self) -> list[RecordedRequest]:
        """Every API request received (not the ``/_ecwid`` admin calls), in arrival order."""
        return self._api.recorded()

    def inject_fault(self, fault: Fault) -> None:
        """Queue a fault; the first queued fault matching a request is applied to it.

        ``path_prefix`` may be given with or without ``/api/v3`` (``"/1003/orders"``).
        """
        self._api.add_fault(fault)

    def faults(self) -> list[Fault]:
        with self._api.lock:
            return [Fault(**asdict(fault)) for fault in self._api.faults]

    def clear_faults(self) -> None:
        self._api.clear_faults()

    def reset(self) -> None:
        """Forget orders, recorded requests and faults (the stores stay)."""
        self._api.reset()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _store_argument(value: str) -> tuple[str, str, str]:
    """``ID:TOKEN`` or ``ID:TOKEN:CURRENCY``."""
    store_id, _, rest = value.partition(":")
    token, currency = rest, "USD"
    head, _, tail = rest.rpartition(":")
    if head and _CURRENCY_RE.match(tail):
        token, currency = head, tail.upper()
    try:
        return _store_key(store_id), _check_token(token), _check_currency(currency)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None


def _order_argument(value: str) -> tuple[str, Path]:
    """``STORE_ID:PATH`` to a JSON file holding one order."""
    store_id, _, path = value.partition(":")
    try:
        key = _store_key(store_id)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None
    if not path:
        raise argparse.ArgumentTypeError(f"{value!r}: expected STORE_ID:PATH")
    return key, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m partnero_bridge_cli.local.ecwid",
        description="Local stand-in for Ecwid's REST API v3 (for the local stack and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=4020, help="port to bind (0 = any free port)")
    parser.add_argument(
        "--store",
        action="append",
        dest="stores",
        type=_store_argument,
        metavar="ID:TOKEN[:CURRENCY]",
        help="a store and its API token (repeatable; default: 1003:secret_token:USD)",
    )
    parser.add_argument(
        "--order",
        action="append",
        dest="orders",
        type=_order_argument,
        default=[],
        metavar="STORE_ID:FILE",
        help="load an order from a JSON file into a store (repeatable)",
    )
    args = parser.parse_args(argv)
    stores: list[tuple[str, str, str]] = args.stores or [("1003", "secret_token", "USD")]
    fake = FakeEcwid(host=args.host, port=args.port)
    for store_id, token, currency in stores:
        fake.add_store(store_id, token, currency)
    order_files: list[tuple[str, Path]] = args.orders
    for store_id, path in order_files:
        try:
            fake.put_order(store_id, _loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
            parser.error(f"cannot load order {path} into store {store_id}: {error}")

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous_term = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    try:
        fake.start()
        print(f"Fake Ecwid API listening on {fake.url}", flush=True)
        listed = ", ".join(f"{store_id} ({currency})" for store_id, _, currency in stores)
        print(f"  stores: {listed}; state: {fake.root_url}{ADMIN_PREFIX}/state", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    print("Fake Ecwid API stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
