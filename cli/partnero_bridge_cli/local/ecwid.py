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
* ``GET /api/v3/{storeId}/orders`` answers a search result ``{total, count, offset, limit,
  items}`` (docs.ecwid.com "Search orders"): ``ids``, ``email``, ``customerId``,
  ``paymentStatus``, ``fulfillmentStatus``, ``createdFrom``/``createdTo`` (the order's
  ``createTimestamp``) and ``updatedFrom``/``updatedTo`` (its ``updateTimestamp``), each bound
  inclusive and given as a UNIX timestamp, ``yyyy-MM-dd HH:mm:ss Z``, ``yyyy-MM-dd HH:mm:ss``
  or ``yyyy-MM-dd`` (UTC); ``offset`` and ``limit`` (at most 100, default 100). Like Ecwid it
  leaves unfinished (``INCOMPLETE``) orders out unless ``paymentStatus`` asks for them. Orders
  come in the order they were first stored (Ecwid documents no order: callers must not rely
  on one);
* ``GET /api/v3/{storeId}/orders/deleted`` answers the deleted-items history (docs.ecwid.com
  "Get deleted items history"): ``from_date``/``to_date`` bound the deletion date (same
  formats), ``offset``/``limit`` page it, items are ``{"id": <order number>, "orderId":
  <public id>, "date": "yyyy-MM-dd HH:mm:ss +0000"}`` and are kept 6 months;
* optionally (``rate_limit_per_minute``, off unless set) Ecwid's rate limit: past that many
  requests a minute with one token, ``429`` with a ``Retry-After`` header (Ecwid's REST API
  overview: 600 requests per minute per token, then 429 and ``Retry-After: N``);
* ``Authorization: Bearer <token>`` must carry the store's own token. A missing or wrong token, an
  unknown store and a token passed in the query string (no longer accepted by Ecwid) are all
  ``403 INVALID_API_TOKEN``; a suspended store is ``402 STORE_IS_SUSPENDED``; an unknown order is
  ``404 ORDER_NOT_FOUND``. Error bodies use Ecwid's shape
  ``{"errorMessage": "...", "errorCode": "..."}``.

Only reads are implemented: other methods on the API are ``405 METHOD_NOT_ALLOWED``.

On top of the API it offers an admin interface under ``/_ecwid`` (no auth, not recorded) so
another process can read and drive it (stores, orders, deletions with their date, recorded
requests, faults, ``settings`` for the rate limit), and the same
fault injection as the Partnero sandbox (:class:`~partnero_bridge_cli.local.fakeserver.Fault`:
error statuses with ``Retry-After``, hangs, connection resets, malformed bodies) so that rate
limits and outages can be exercised.

Run it in the foreground with::

    python -m partnero_bridge_cli.local.ecwid --port 4020 --store 1003:secret_token \\
        --order 1003:events/ecwid/orders/paid-with-partner.json
"""

import argparse
import bisect
import copy
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final, cast

from partnero_bridge_cli.local.fakeserver import (
    NO_ANSWER_STATUS,
    Answer,
    FakeApi,
    FakeHandler,
    FakeService,
    Fault,
    RecordedRequest,
    dumps,
    loads,
    phrase,
    segments,
    serve_until_signalled,
)
from partnero_bridge_cli.local.throttle import SlidingWindowLimit

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

_DEFAULT_SEARCH_LIMIT: Final = 100
_MAX_SEARCH_LIMIT: Final = 100
# docs.ecwid.com "Get deleted items history": "we keep the data about deleted items for 6
# months only"; its limit: "Maximum allowed value: 100", default 100 (the response table
# says 10; Ecwid's own Java client always sends one).
DELETED_RETENTION_SECONDS: Final = 183 * 24 * 3600
_DEFAULT_DELETED_LIMIT: Final = 100
# docs.ecwid.com/api-reference (REST API overview): "up to 600 requests per minute per
# token", then 429 with a "Retry-After: N" header.
ECWID_REQUESTS_PER_MINUTE: Final = 600
_DATE_FORMATS: Final = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
_ECWID_DATE: Final = "%Y-%m-%d %H:%M:%S %z"
_STORE_ID_RE: Final = re.compile(r"^[1-9][0-9]{0,17}$")
_CURRENCY_RE: Final = re.compile(r"^[A-Za-z]{3}$")
_MASK: Final = "***"
_FAULT_PHRASE: Final = "Fake Ecwid fault"

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


def ecwid_date(timestamp: int) -> str:
    """Unix seconds as Ecwid writes dates in orders (``2014-09-20 19:59:43 +0000``)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime(_ECWID_DATE)


def parse_ecwid_time(text: str) -> int | None:
    """A date parameter of Ecwid's searches as Unix seconds, or None if not one of its formats.

    Ecwid's order search (``createdFrom``...) and deleted-items history (``from_date``,
    ``to_date``) take "UNIX timestamp", ``yyyy-MM-dd HH:mm:ss Z``, ``yyyy-MM-dd HH:mm:ss``
    and ``yyyy-MM-dd`` ("2015-04-22 (this is 2015-04-22 00:00:00 UTC)"); a date-time
    without a zone is read as UTC too.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - UTC when no zone
        except ValueError:
            continue
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
    return None


def _order_time(order: Mapping[str, Any], stamp: str, date: str) -> int | None:
    """An order's ``createTimestamp``/``updateTimestamp``, else its date text read."""
    value = order.get(stamp)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = order.get(date)
    return parse_ecwid_time(text) if isinstance(text, str) else None


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
    copied = loads(dumps(order))
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

    def answer(self) -> Answer:
        payload: dict[str, Any] = {"errorMessage": self.message}
        if self.code is not None:
            payload["errorCode"] = self.code
        return Answer(self.status, payload, dict(self.headers))


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
    deleted: list[dict[str, Any]] = field(default_factory=list)
    """Deletions, oldest first: ``{"id", "orderId", "date", "timestamp"}`` (see
    :meth:`removed_item`)."""

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

    def remove(self, order_id: str, when: int) -> bool:
        """Delete an order, remembering it in the deleted-items history at ``when``."""
        public = self.resolve(order_id)
        if public is None:
            return False
        order = self.orders.pop(public)
        self._drop_aliases(public)
        # Kept in deletion-date order, whatever order the deletions were recorded in.
        bisect.insort(self.deleted, self.removed_item(order, when), key=lambda i: i["timestamp"])
        return True

    @staticmethod
    def removed_item(order: Mapping[str, Any], when: int) -> dict[str, Any]:
        """One entry of ``GET /orders/deleted``.

        docs.ecwid.com "Get deleted items history": each item has ``id`` ("Internal item
        ID", for orders the order number; on current stores ``orderNumber`` equals
        ``internalId``) and ``date`` ("Item deletion date"). Ecwid's Java client also reads
        ``orderId`` (the public id) and parses ``date`` as ``yyyy-MM-dd HH:mm:ss z``.
        """
        number = order.get("internalId", order.get("orderNumber"))
        return {
            "id": int(number) if str(number).isdigit() else number,
            "orderId": str(order["id"]),
            "date": ecwid_date(when),
            "timestamp": when,
        }

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


_Route = Callable[[_Store, list[str], dict[str, str]], Answer]


class _Api(FakeApi):
    """All state of the fake, guarded by one lock, and the request handling that works on it."""

    api_prefix: ClassVar[str] = API_PREFIX
    admin_prefix: ClassVar[str] = ADMIN_PREFIX
    label: ClassVar[str] = "fake Ecwid"

    def __init__(
        self, clock: Callable[[], float] = time.time, rate_limit_per_minute: int | None = None
    ) -> None:
        super().__init__()
        self.stores: dict[str, _Store] = {}
        self.clock = clock
        self.limit: SlidingWindowLimit | None = None
        self.set_rate_limit(rate_limit_per_minute)

    def set_rate_limit(self, per_minute: int | None) -> None:
        """Answer 429 with ``Retry-After`` past ``per_minute`` requests a token (None: off)."""
        with self.lock:
            self.limit = None if per_minute is None else SlidingWindowLimit(per_minute, 60.0)

    def settings(self) -> dict[str, Any]:
        return {"rate_limit_per_minute": self.limit.limit if self.limit is not None else None}

    def now(self) -> int:
        return int(self.clock())

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

    def delete_order(self, store_id: object, order_id: object, when: object = None) -> None:
        key = _order_key(order_id, "an order id")
        if when is not None and (isinstance(when, bool) or not isinstance(when, int)):
            raise ValueError("a deletion time must be Unix seconds (an integer)")
        with self.lock:
            stamp = self.now() if when is None else when
            if not self.store(store_id).remove(key, stamp):
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
            super().reset()
            for store in self.stores.values():
                store.orders.clear()
                store.aliases.clear()
                store.deleted.clear()

    # ---- admin interface -------------------------------------------------------------------

    def admin_methods(self, parts: list[str]) -> tuple[str, ...] | None:
        if parts == ["settings"]:
            return ("GET", "PUT")
        if len(parts) == 2 and parts[0] == "stores":
            return ("GET", "PUT")
        if len(parts) == 3 and parts[0] == "stores" and parts[2] == "orders":
            return ("PUT",)
        if len(parts) == 3 and parts[0] == "stores" and parts[2] == "deleted":
            return ("GET",)
        if len(parts) == 4 and parts[0] == "stores" and parts[2] == "orders":
            return ("GET", "PUT", "DELETE")
        return super().admin_methods(parts)

    def admin_route(self, method: str, parts: list[str], body: Any) -> Answer:
        if parts == ["settings"]:
            if method == "PUT":
                self.admin_put_settings(body)
            return Answer(200, self.settings())
        if parts[0] != "stores":
            return super().admin_route(method, parts, body)
        if len(parts) == 3 and parts[2] == "deleted":
            items = self.store(parts[1]).deleted
            return Answer(200, [self.served_removed(item) for item in items])
        if len(parts) == 3:
            if not isinstance(body, list) or not all(isinstance(o, dict) for o in body):
                raise ValueError("Expected a list of orders")
            for order in body:
                self.put_order(parts[1], order)
            return Answer(200, {"stored": len(body)})
        if len(parts) == 2:
            if method == "PUT":
                self.admin_put_store(parts[1], body)
            summary = self.store(parts[1]).summary()
            del summary["orders"]
            return Answer(200, summary)
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
            # An optional {"deleted_at": <Unix seconds>} dates the deletion (default now).
            when = body.get("deleted_at") if isinstance(body, dict) else None
            self.delete_order(store_id, order_id, when)
            return Answer(200, {"ok": True})
        found = self.get_order(store_id, order_id)
        if found is None:
            raise KeyError(f"store {_store_key(store_id)} has no order {order_id}")
        return Answer(200, found)

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

    def admin_put_settings(self, body: Any) -> None:
        if not isinstance(body, dict) or set(body) - {"rate_limit_per_minute"}:
            raise ValueError('Expected {"rate_limit_per_minute": <requests> or null}')
        per_minute = body.get("rate_limit_per_minute")
        if per_minute is not None and (
            isinstance(per_minute, bool) or not isinstance(per_minute, int)
        ):
            raise ValueError("rate_limit_per_minute must be a whole number or null")
        self.set_rate_limit(per_minute)

    def admin_state(self) -> Any:
        return {
            "stores": [store.summary() for store in self.stores.values()],
            "faults": [fault.to_json() for fault in self.faults],
            "requestCount": len(self.recorded()),
            "settings": self.settings(),
        }

    @staticmethod
    def served_removed(item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in item.items() if name != "timestamp"}

    def record_json(self, record: RecordedRequest) -> dict[str, Any]:
        """A recorded request with tokens masked wherever they were sent."""
        data = record.to_json()
        query = data["query"]
        if isinstance(query, dict) and "token" in query:
            query["token"] = _MASK
        return data

    # ---- error shapes ----------------------------------------------------------------------

    def fault_answer(self, status: int) -> Answer:
        message, code = _FAULT_ERRORS.get(status, (phrase(status, _FAULT_PHRASE), None))
        return _EcwidError(status, message, code).answer()

    def protocol_error(self, status: int, message: str | None) -> Any:
        return {"errorMessage": message or phrase(status, _FAULT_PHRASE)}

    # ---- API entry point -------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> Answer:
        with self.lock:
            try:
                if not self.is_api_path(path):
                    raise _EcwidError(404, f"Resource not found: {path}")
                parts = segments(path[len(API_PREFIX) :])
                if not parts:
                    raise _EcwidError(404, f"Resource not found: {path}")
                store = self.authenticate(parts[0], query, headers)
                self.throttle(store)
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

    def throttle(self, store: _Store) -> None:
        """Ecwid's limit per token, when one is set: 429 with ``Retry-After`` past it."""
        limit = self.limit
        if limit is None:
            return
        wait = limit.admit(store.token)
        if wait is not None:
            message, code = _FAULT_ERRORS[429]
            retry = str(SlidingWindowLimit.whole_seconds(wait))
            raise _EcwidError(429, message, code, {"Retry-After": retry})

    def resolve(self, method: str, rest: list[str], path: str) -> tuple[_Route, list[str]]:
        route: _Route
        params: list[str]
        if rest == ["profile"]:
            route, params = self.profile, []
        elif rest == ["orders"]:
            route, params = self.search_orders, []
        elif rest == ["orders", "deleted"]:
            route, params = self.deleted_orders, []
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

    def order(self, store: _Store, params: list[str], query: dict[str, str]) -> Answer:
        public = store.resolve(params[0])
        if public is None:
            raise _EcwidError(404, f"Order #{params[0]} not found", "ORDER_NOT_FOUND")
        return Answer(200, copy.deepcopy(store.orders[public]))

    def search_orders(self, store: _Store, params: list[str], query: dict[str, str]) -> Answer:
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
        created_from, created_to = self.query_time(query, "createdFrom", "createdTo")
        updated_from, updated_to = self.query_time(query, "updatedFrom", "updatedTo")

        def within(order: Mapping[str, Any], stamp: str, date: str, low: Any, high: Any) -> bool:
            if low is None and high is None:
                return True
            when = _order_time(order, stamp, date)
            return (
                when is not None and (low is None or when >= low) and (high is None or when <= high)
            )

        found: list[dict[str, Any]] = []
        for public, order in store.orders.items():
            if not within(order, "createTimestamp", "createDate", created_from, created_to):
                continue
            if not within(order, "updateTimestamp", "updateDate", updated_from, updated_to):
                continue
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
        return Answer(
            200,
            {
                "total": len(found),
                "count": len(page),
                "offset": offset,
                "limit": limit,
                "items": page,
            },
        )

    def deleted_orders(self, store: _Store, params: list[str], query: dict[str, str]) -> Answer:
        """``GET /api/v3/{storeId}/orders/deleted``: the orders deleted from the store.

        docs.ecwid.com "Get deleted items history": ``from_date`` / ``to_date`` bound the
        deletion date (the formats of :func:`parse_ecwid_time`), ``offset`` / ``limit``
        page (limit at most 100, default 100); the answer is ``{total, count, offset,
        limit, items: [{id, date}]}``, kept for 6 months. Items come oldest deletion first
        (Ecwid documents no order).
        """
        offset = self.query_int(query, "offset", 0, 0, 10**9)
        limit = self.query_int(query, "limit", _DEFAULT_DELETED_LIMIT, 1, _MAX_SEARCH_LIMIT)
        low, high = self.query_time(query, "from_date", "to_date")
        oldest = self.now() - DELETED_RETENTION_SECONDS
        found = [
            item
            for item in store.deleted
            if item["timestamp"] >= oldest
            and (low is None or item["timestamp"] >= low)
            and (high is None or item["timestamp"] <= high)
        ]
        page = [self.served_removed(item) for item in found[offset : offset + limit]]
        return Answer(
            200,
            {
                "total": len(found),
                "count": len(page),
                "offset": offset,
                "limit": limit,
                "items": page,
            },
        )

    @staticmethod
    def query_time(
        query: Mapping[str, str], lower: str, upper: str
    ) -> tuple[int | None, int | None]:
        """Two date parameters (lower and upper bound, both inclusive) as Unix seconds."""
        bounds: list[int | None] = []
        for name in (lower, upper):
            raw = query.get(name, "").strip()
            value = parse_ecwid_time(raw) if raw else None
            if raw and value is None:
                raise _EcwidError(
                    400,
                    f"Wrong parameter '{name}' value: expected a UNIX timestamp or a date "
                    "('yyyy-MM-dd HH:mm:ss Z', 'yyyy-MM-dd HH:mm:ss', 'yyyy-MM-dd')",
                    "WRONG_PARAMETER",
                )
            bounds.append(value)
        return bounds[0], bounds[1]

    def profile(self, store: _Store, params: list[str], query: dict[str, str]) -> Answer:
        prefix, suffix, precision = currency_format(store.currency)
        store_id = int(store.store_id)
        site = f"https://store{store_id}.company.site"
        return Answer(
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


class _Handler(FakeHandler):
    server_version = "FakeEcwid/1.0"
    content_type = "application/json;charset=utf-8"

    def version_string(self) -> str:
        # As this fake always sent it: http.server's "<server_version> <sys_version>" with an
        # empty sys_version, so the Server header ends in a space.
        return f"{self.server_version} "


# --------------------------------------------------------------------------------------------
# Public fake
# --------------------------------------------------------------------------------------------


class FakeEcwid(FakeService[_Api]):
    """An in-process fake of Ecwid's REST API v3, served over HTTP from a daemon thread.

    Its ``url`` (``.../api/v3``) is the value for ``ECWID_API_URL``.

    >>> with FakeEcwid({1003: "secret_token"}) as ecwid:  # doctest: +SKIP
    ...     ecwid.put_order(1003, order)
    ...     os.environ["ECWID_API_URL"] = ecwid.url
    """

    handler_class = _Handler
    description = "the fake Ecwid API"
    thread_name = "fake-ecwid"

    def __init__(
        self,
        stores: Mapping[int | str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        rate_limit_per_minute: int | None = None,
    ) -> None:
        """``clock`` (Unix seconds) dates deletions and bounds the 6 months of deleted-order
        history; ``rate_limit_per_minute`` (None: none) answers 429 with ``Retry-After``
        past that many requests a minute per token, as Ecwid does past
        :data:`ECWID_REQUESTS_PER_MINUTE`."""
        super().__init__(_Api(clock, rate_limit_per_minute), host, port)
        for store_id, token in (stores or {}).items():
            self.add_store(store_id, token)

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

    def delete_order(
        self, store_id: int | str, order_id: int | str, deleted_at: int | None = None
    ) -> None:
        """Remove an order (by public id or internalId); ``KeyError`` if there is none.

        It is listed by ``GET /orders/deleted`` as deleted at ``deleted_at`` (Unix
        seconds; default: the fake's clock now).
        """
        self._api.delete_order(store_id, order_id, deleted_at)

    def put_orders(self, store_id: int | str, orders: Iterable[Mapping[str, Any]]) -> int:
        """Store (or replace) several orders, in order; returns how many."""
        count = 0
        for order in orders:
            self._api.put_order(store_id, order)
            count += 1
        return count

    def store_currency(self, store_id: int | str) -> str:
        """The store's currency (``KeyError`` for an unknown store)."""
        with self._api.lock:
            return self._api.store(store_id).currency

    def deleted_orders(self, store_id: int | str) -> list[dict[str, Any]]:
        """The store's deleted-items history, oldest first (``{"id", "orderId", "date"}``)."""
        with self._api.lock:
            return [self._api.served_removed(item) for item in self._api.store(store_id).deleted]

    def set_rate_limit(self, per_minute: int | None) -> None:
        """Answer 429 with ``Retry-After`` past ``per_minute`` requests a token (None: off)."""
        self._api.set_rate_limit(per_minute)

    def now(self) -> int:
        """The fake's clock, Unix seconds."""
        return self._api.now()

    def order(self, store_id: int | str, order_id: int | str) -> dict[str, Any] | None:
        """A copy of a stored order, or None."""
        return self._api.get_order(store_id, order_id)

    def orders(self, store_id: int | str) -> list[dict[str, Any]]:
        """Copies of every order of a store, in the order they were first stored."""
        with self._api.lock:
            return [copy.deepcopy(order) for order in self._api.store(store_id).orders.values()]

    def reset(self) -> None:
        """Forget orders, recorded requests and faults (the stores stay)."""
        super().reset()


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
            fake.put_order(store_id, loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
            parser.error(f"cannot load order {path} into store {store_id}: {error}")
    listed = ", ".join(f"{store_id} ({currency})" for store_id, _, currency in stores)
    return serve_until_signalled(fake, "Fake Ecwid API", f"stores: {listed}")


if __name__ == "__main__":
    raise SystemExit(main())
