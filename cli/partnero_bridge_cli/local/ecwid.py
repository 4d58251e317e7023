"""Local stand-in for Ecwid's REST API v3 (``ECWID_API_URL=<fake.url>``, ``.../api/v3``).

Ecwid needs a live store on a paid plan and its ``secret_...`` token, so the bridge reads this
fake instead. It serves what ``partnero_bridge.ecwid.client`` reads, as docs.ecwid.com has it:

* ``GET /{storeId}/orders/{orderId}``: the order exactly as stored (exact numbers), by its public
  ``id`` or its ``internalId``; else ``404 ORDER_NOT_FOUND``;
* ``GET /{storeId}/profile``: ``formatsAndUnits.currency`` is the store's (orders carry none);
* ``GET /{storeId}/orders`` ("Search orders"): ``{total, count, offset, limit, items}`` by
  ``createdFrom``/``createdTo`` (``createTimestamp``) and ``updatedFrom``/``updatedTo``
  (``updateTimestamp``), inclusive, as UNIX timestamps or ``yyyy-MM-dd[ HH:mm:ss[ Z]]`` (UTC);
  ``offset``, ``limit`` (at most and by default 100); ``INCOMPLETE`` orders only when
  ``paymentStatus`` asks for them; in the order first stored (Ecwid documents none); any other
  parameter (Ecwid's other filters too) ``400 WRONG_PARAMETER``, as is a malformed store id;
* ``GET /{storeId}/orders/deleted`` ("Get deleted items history"): by ``from_date``/``to_date``
  (the deletion date), paged alike; items ``{"id": <order number>, "orderId", "date":
  "yyyy-MM-dd HH:mm:ss +0000"}``, kept 6 months;
* ``Authorization: Bearer <the store's token>``, else (also for an unknown store or a token in
  the query string) ``403 INVALID_API_TOKEN``; a suspended store ``402 STORE_IS_SUSPENDED``;
  writes ``405``; errors ``{"errorMessage", "errorCode"}``; optionally (off unless set) the
  limit per token (600 a minute on Ecwid), then ``429`` with ``Retry-After: N``.

Admin under ``/_ecwid`` (besides :mod:`.fakeapp`'s): ``GET|PUT settings``
(``{"rate_limit_per_minute": N | null}``), ``GET|PUT stores/<id>`` (``{"token", "currency",
"suspended"}``), ``PUT stores/<id>/orders`` (a list), ``PUT|DELETE stores/<id>/orders/<orderId>``
(``{"deleted_at": <Unix seconds>}`` dates a deletion).

Run it in the foreground with::

    python -m partnero_bridge_cli.local.ecwid --port 4020 --store 1003:secret_token \\
        --order 1003:events/ecwid/orders/paid-with-partner.json
"""

import bisect
import copy
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import unquote

from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from partnero_bridge_cli.local.fakeapp import (
    NO_ANSWER_STATUS,
    FakeApp,
    FakeService,
    Fault,
    RateSetting,
    RecordedRequest,
    cli_parser,
    dumps,
    json_response,
    loads,
    phrase,
    serve_until_signalled,
)

__all__ = ["NO_ANSWER_STATUS", "FakeEcwid", "Fault", "RecordedRequest", "ecwid_date", "main"]

# "we keep the data about deleted items for 6 months only"
DELETED_RETENTION_SECONDS: Final = 183 * 24 * 3600
_DATE_FORMATS: Final = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
_STORE_ID_RE: Final = re.compile(r"^[1-9][0-9]{0,17}$")
# Filters of Ecwid's "Search orders" (current and earlier docs) this fake does not apply: asked
# for, they are a 400 rather than silently ignored (which would answer every order).
_UNSERVED_FILTERS: Final = frozenset(
    "ids keywords couponCode totalFrom totalTo email customerId customer orderNumber"  # noqa: SIM905
    " vendorOrderNumber pickupTimeFrom pickupTimeTo paymentMethod shippingMethod"
    " fulfillmentStatus subscriptionId responseFields".split()
)
_CURRENCY_RE: Final = re.compile(r"^[A-Za-z]{3}$")
_ZERO_DECIMALS: Final = frozenset({"BIF", "CLP", "ISK", "JPY", "KRW", "PYG", "UGX", "VND", "XOF"})
_THREE_DECIMALS: Final = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_SYMBOLS: Final[Mapping[str, str]] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# errorCode values from Ecwid's "REST API error codes", for injected status faults.
_FAULT_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("Wrong request parameter", "WRONG_PARAMETER"),
    402: ("Store with specified ID is currently suspended", "STORE_IS_SUSPENDED"),
    403: ("Invalid access token", "INVALID_API_TOKEN"),
    404: ("Order with specified ID was not found", "ORDER_NOT_FOUND"),
    429: ("Too many requests, rate limit exceeded", "RATE_LIMITED"),
    500: ("Internal server error", "INTERNAL_ERROR"),
}


def ecwid_date(timestamp: int) -> str:
    """Unix seconds as Ecwid writes dates in orders (``2014-09-20 19:59:43 +0000``)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S %z")


def _ecwid_time(value: Any) -> int | None:
    """A date parameter of Ecwid's searches as Unix seconds (a date without a zone is UTC)."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - UTC when no zone
        except ValueError:
            continue
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
    formats = "'yyyy-MM-dd HH:mm:ss Z', 'yyyy-MM-dd HH:mm:ss' or 'yyyy-MM-dd'"
    raise ValueError(f"expected a UNIX timestamp or a date ({formats})")


_Time = Annotated[int | None, BeforeValidator(_ecwid_time)]


class _Page(BaseModel):
    offset: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 100


class _Search(_Page):
    unserved: ClassVar[frozenset[str]] = _UNSERVED_FILTERS
    createdFrom: _Time = None
    createdTo: _Time = None
    updatedFrom: _Time = None
    updatedTo: _Time = None
    paymentStatus: str | None = None


class _DeletedQuery(_Page):
    from_date: _Time = None
    to_date: _Time = None


def _within(value: int | None, low: int | None, high: int | None) -> bool:
    if low is None and high is None:
        return True
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def _order_time(order: Mapping[str, Any], stamp: str, date: str) -> int | None:
    """An order's ``createTimestamp``/``updateTimestamp``, else its date text read."""
    value = order.get(stamp)
    if type(value) is int:
        return value
    try:
        return _ecwid_time(order[date]) if isinstance(order.get(date), str) else None
    except ValueError:
        return None


def _store_key(store_id: object) -> str:
    """Canonical form of a store id (``1003`` and ``"1003"`` are the same store)."""
    text = str(store_id).strip() if type(store_id) in (int, str) else ""
    if not _STORE_ID_RE.match(text):
        raise ValueError(f"a store id must be a positive integer, not {store_id!r}")
    return text


def _order_key(value: object) -> str:
    if type(value) not in (int, str) or str(value).strip() == "":
        raise ValueError("an order id must be a non-empty string or an integer")
    return str(value)


class _EcwidError(Exception):
    """An error in Ecwid's shape: ``{"errorMessage": ..., "errorCode": ...}``."""

    def __init__(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers

    def response(self) -> Response:
        body = {"errorMessage": self.message} | ({"errorCode": self.code} if self.code else {})
        return json_response(self.status, body, self.headers)


def _query[M: BaseModel](model: type[M], args: Mapping[str, str]) -> M:
    # Ecwid does not document what it does with a parameter it does not know: refused too.
    for name in sorted(args.keys() - model.model_fields.keys() - {"token"}):  # see authenticate
        if name in getattr(model, "unserved", ()):
            message = f"This fake Ecwid does not implement the search filter '{name}'"
        else:
            message = f"Unknown parameter '{name}' (not in Ecwid's docs)"
        raise _EcwidError(400, message, "WRONG_PARAMETER")
    try:
        return model.model_validate({k: v for k, v in args.items() if v.strip()})
    except ValidationError as error:
        item = error.errors()[0]
        reason = item["ctx"]["error"] if item["type"] == "value_error" else item["msg"]
        message = f"Wrong parameter '{item['loc'][0]}' value: {reason}"
        raise _EcwidError(400, message, "WRONG_PARAMETER") from None


def _listing(found: list[dict[str, Any]], page: _Page) -> dict[str, Any]:
    items = found[page.offset : page.offset + page.limit]
    return {
        "total": len(found),
        "count": len(items),
        "offset": page.offset,
        "limit": page.limit,
    } | {"items": items}


# ---- state ---------------------------------------------------------------------------------


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
    deleted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(deletion time, deleted-items entry), oldest first."""

    def resolve(self, order_id: str) -> str | None:
        public = order_id if order_id in self.orders else self.aliases.get(order_id)
        return public if public in self.orders else None

    def put(self, order: dict[str, Any]) -> None:
        public = str(order["id"])
        self.aliases = {k: v for k, v in self.aliases.items() if v != public}
        self.orders[public] = order
        if order.get("internalId") is not None:
            self.aliases[str(order["internalId"])] = public

    def remove(self, order_id: str, when: int) -> None:
        """Delete an order (``KeyError`` if none), listing it as deleted at ``when``.

        An entry's ``id`` is the order number (``internalId`` on current stores) and ``date``
        its deletion date; Ecwid's Java client also reads ``orderId``, the public id.
        """
        public = self.resolve(order_id)
        if public is None:
            raise KeyError(f"store {self.store_id} has no order {order_id}")
        order = self.orders.pop(public)
        self.aliases = {k: v for k, v in self.aliases.items() if v != public}
        number: Any = order.get("internalId", order.get("orderNumber"))
        entry = {"id": int(number) if str(number).isdigit() else number, "orderId": public}
        bisect.insort(self.deleted, (when, entry | {"date": ecwid_date(when)}), key=lambda i: i[0])

    def summary(self) -> dict[str, Any]:
        held = {"currency": self.currency, "suspended": self.suspended}
        return {"storeId": int(self.store_id)} | held

    def profile(self) -> dict[str, Any]:
        code, number = self.currency, int(self.store_id)
        precision = 0 if code in _ZERO_DECIMALS else 3 if code in _THREE_DECIMALS else 2
        symbol = _SYMBOLS.get(code)
        units = {"currency": code, "currencyPrefix": symbol or "", "currencyPrecision": precision}
        units |= {"currencySuffix": "" if symbol else f" {code}", "timezone": "UTC"}
        info = {"storeId": number, "storeUrl": f"https://store{number}.company.site/products"}
        account = {"accountName": f"Store {number}", "suspended": self.suspended}
        return {"generalInfo": info, "account": account, "formatsAndUnits": units}


class _Api(FakeApp):
    """All state of the fake, guarded by one lock, and the request handling that works on it."""

    api_prefix: ClassVar[str] = "/api/v3"
    admin_prefix: ClassVar[str] = "/_ecwid"

    def __init__(self, clock: Callable[[], float], per_minute: int | None) -> None:
        super().__init__()
        self.stores: dict[str, _Store] = {}
        self.clock = clock
        self.rate = RateSetting("rate_limit_per_minute", 60.0, per_minute)
        routes = [
            ("/profile", self.profile),
            ("/orders", self.search_orders),
            ("/orders/deleted", self.deleted_orders),
            ("/orders/<order_id>", self.order),
        ]
        rules = [Rule(path, methods=["GET"], endpoint=endpoint) for path, endpoint in routes]
        self.api_map = Map(rules, strict_slashes=False)

    def admin_rules(self) -> Iterable[Rule]:
        return [
            Rule("/settings", methods=["GET"], endpoint=lambda _: self.rate.json()),
            Rule("/settings", methods=["PUT"], endpoint=lambda body: self.rate.put(body)),
            Rule("/stores/<store_id>", methods=["GET", "PUT"], endpoint=self.admin_store),
            Rule("/stores/<store_id>/orders", methods=["PUT"], endpoint=self.admin_orders),
            Rule("/stores/<store_id>/orders/<order_id>", methods=["PUT"], endpoint=self.admin_put),
            Rule(
                "/stores/<store_id>/orders/<order_id>",
                methods=["DELETE"],
                endpoint=self.admin_delete,
            ),
        ]

    # ---- state (also used by the Python API) -----------------------------------------------

    def add_store(
        self, store_id: object, token: object, currency: object, suspended: object
    ) -> None:
        key = _store_key(store_id)
        if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
            raise ValueError("a store token must be a non-empty string without spaces")
        if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
            raise ValueError("a currency must be a three-letter ISO 4217 code such as USD")
        if not isinstance(suspended, bool):
            raise ValueError("suspended must be true or false")
        with self.lock:
            store = self.stores.setdefault(key, _Store(key, token, currency.upper()))
            store.token, store.currency, store.suspended = token, currency.upper(), suspended

    def store(self, store_id: object) -> _Store:
        store = self.stores.get(_store_key(store_id))
        if store is None:
            raise KeyError(f"unknown store {store_id}: add it first")
        return store

    def put_order(self, store_id: object, order: Mapping[str, Any]) -> None:
        if not isinstance(order, Mapping):
            raise ValueError("an order must be a JSON object")
        if "id" not in order:
            raise ValueError('an order needs its public "id" (e.g. "K8XTQ")')
        _order_key(order["id"])
        copied = loads(dumps(order))  # a private copy, numbers exact
        with self.lock:
            self.store(store_id).put(copied)

    def delete_order(self, store_id: object, order_id: object, when: object = None) -> None:
        if when is not None and type(when) is not int:
            raise ValueError("a deletion time must be Unix seconds (an integer)")
        with self.lock:
            stamp = int(self.clock()) if when is None else when
            self.store(store_id).remove(_order_key(order_id), stamp)

    def clear(self) -> None:
        for store in self.stores.values():
            store.orders, store.aliases, store.deleted = {}, {}, []

    def admin_state(self) -> Any:
        stores = [s.summary() | {"orders": list(s.orders.values())} for s in self.stores.values()]
        settings = self.rate.json()
        return {"stores": stores, "requestCount": len(self.recorded()), "settings": settings}

    # ---- admin -----------------------------------------------------------------------------

    def admin_store(self, body: Any, store_id: str) -> dict[str, Any]:
        if body is not None:  # PUT
            if not isinstance(body, dict) or set(body) - {"token", "currency", "suspended"}:
                raise ValueError('Expected {"token": "secret_...", "currency": "USD"}')
            held = self.stores.get(_store_key(store_id))
            now: dict[str, Any] = {"currency": "USD", "suspended": False}
            if held is not None:
                now = {"token": held.token, "currency": held.currency, "suspended": held.suspended}
            if "token" not in now | body:
                raise ValueError('A new store needs a "token"')
            self.add_store(store_id, **(now | body))
        return self.store(store_id).summary()

    def admin_orders(self, body: Any, store_id: str) -> dict[str, int]:
        if not isinstance(body, list) or not all(isinstance(order, dict) for order in body):
            raise ValueError("Expected a list of orders")
        for order in body:
            self.put_order(store_id, order)
        return {"stored": len(body)}

    def admin_put(self, body: Any, store_id: str, order_id: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("Expected the order as a JSON object")
        order = {"id": order_id} | body
        if str(order["id"]) != order_id:
            raise ValueError(f'The order "id" ({order["id"]}) differs from the path ({order_id})')
        self.put_order(store_id, order)
        return order

    def admin_delete(self, body: Any, store_id: str, order_id: str) -> dict[str, bool]:
        # An optional {"deleted_at": <Unix seconds>} dates the deletion (default now).
        when = body.get("deleted_at") if isinstance(body, dict) else None
        self.delete_order(store_id, order_id, when)
        return {"ok": True}

    # ---- the API ---------------------------------------------------------------------------

    def fault_response(self, status: int) -> Response:
        message, code = _FAULT_ERRORS.get(status, (phrase(status, "Fake Ecwid fault"), None))
        return _EcwidError(status, message, code).response()

    def answer(self, request: Request, path: str) -> Response:
        with self.lock:
            try:
                return self.route(request, path)
            except _EcwidError as error:
                return error.response()

    def route(self, request: Request, path: str) -> Response:
        store_part, _, rest = path[len(self.api_prefix) :].strip("/").partition("/")
        if not path.startswith(self.api_prefix + "/") or not store_part:
            raise _EcwidError(404, f"Resource not found: {path}")
        if not _STORE_ID_RE.fullmatch(unquote(store_part)):  # Ecwid's {storeId}: a number
            message = f"Wrong store ID '{unquote(store_part)}': a store ID is a positive integer"
            raise _EcwidError(400, message, "WRONG_PARAMETER")
        store = self.authenticate(unquote(store_part), request)
        if (wait := self.rate.admit(store.token)) is not None:
            message, code = _FAULT_ERRORS[429]
            raise _EcwidError(429, message, code, **{"Retry-After": str(wait)})
        try:
            endpoint, args = self.api_map.bind("ecwid").match("/" + rest, method=request.method)
        except NotFound:
            raise _EcwidError(404, f"Resource not found: {path}") from None
        except MethodNotAllowed:
            message = f"HTTP method {request.method} is not supported by this fake for {path}"
            raise _EcwidError(405, message, "METHOD_NOT_ALLOWED", Allow="GET, HEAD") from None
        if store.suspended:
            message, code = _FAULT_ERRORS[402]
            raise _EcwidError(402, message, code)
        args = {name: unquote(value) for name, value in args.items()}
        return json_response(200, endpoint(store, request.args, **args))

    def authenticate(self, store_id: str, request: Request) -> _Store:
        store = self.stores.get(store_id)
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        presented = scheme.lower() == "bearer" and bool(token)
        if store is not None and presented and hmac.compare_digest(token, store.token):
            return store
        if not presented and "token" in request.args:
            message = "Access tokens in the query string are no longer accepted: use the header"
        elif not presented:
            message = "Access token is missing: send 'Authorization: Bearer <token>'"
        else:
            message = "Invalid access token for this store"
        raise _EcwidError(403, message, "INVALID_API_TOKEN")

    def profile(self, store: _Store, query: Mapping[str, str]) -> dict[str, Any]:
        return store.profile()

    def order(self, store: _Store, query: Mapping[str, str], order_id: str) -> dict[str, Any]:
        public = store.resolve(order_id)
        if public is None:
            raise _EcwidError(404, f"Order #{order_id} not found", "ORDER_NOT_FOUND")
        return store.orders[public]

    def search_orders(self, store: _Store, query: Mapping[str, str]) -> dict[str, Any]:
        asked = _query(_Search, query)
        statuses = {s.strip().upper() for s in (asked.paymentStatus or "").split(",") if s.strip()}

        def wanted(order: Mapping[str, Any]) -> bool:
            status = str(order.get("paymentStatus", ""))
            created = _order_time(order, "createTimestamp", "createDate")
            updated = _order_time(order, "updateTimestamp", "updateDate")
            return (
                (status in statuses if statuses else status != "INCOMPLETE")
                and _within(created, asked.createdFrom, asked.createdTo)
                and _within(updated, asked.updatedFrom, asked.updatedTo)
            )

        return _listing([order for order in store.orders.values() if wanted(order)], asked)

    def deleted_orders(self, store: _Store, query: Mapping[str, str]) -> dict[str, Any]:
        asked = _query(_DeletedQuery, query)
        oldest = int(self.clock()) - DELETED_RETENTION_SECONDS
        found = [
            entry
            for when, entry in store.deleted
            if when >= oldest and _within(when, asked.from_date, asked.to_date)
        ]
        return _listing(found, asked)


# ---- the public fake -----------------------------------------------------------------------


class FakeEcwid(FakeService[_Api]):
    """An in-process fake of Ecwid's REST API v3, served over HTTP from a daemon thread.

    Its ``url`` (``.../api/v3``) is the value for ``ECWID_API_URL``. ``clock`` (Unix seconds)
    dates deletions and bounds the 6 months of deleted-order history; ``rate_limit_per_minute``
    (None: none) answers 429 with ``Retry-After`` past that many requests a minute per token.
    """

    description = "the fake Ecwid API"

    def __init__(
        self,
        stores: Mapping[int | str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        rate_limit_per_minute: int | None = None,
    ) -> None:
        super().__init__(_Api(clock, rate_limit_per_minute), host, port)
        for store_id, token in (stores or {}).items():
            self.add_store(store_id, token)

    def add_store(
        self, store_id: int | str, token: str, currency: str = "USD", suspended: bool = False
    ) -> None:
        """Add a store, or change the token, currency or suspension of a known one."""
        self._app.add_store(store_id, token, currency, suspended)

    def put_order(self, store_id: int | str, order: Mapping[str, Any]) -> None:
        """Store (or replace) an order, reachable by ``order["id"]`` and its ``internalId``.
        Floats are kept by their shortest text; pass ``Decimal`` values for exact digits."""
        self._app.put_order(store_id, order)

    def put_orders(self, store_id: int | str, orders: Iterable[Mapping[str, Any]]) -> int:
        """Store (or replace) several orders, in order; returns how many."""
        held = list(orders)
        for order in held:
            self._app.put_order(store_id, order)
        return len(held)

    def delete_order(
        self, store_id: int | str, order_id: int | str, deleted_at: int | None = None
    ) -> None:
        """Remove an order (by public id or internalId; ``KeyError`` if none), listed by
        ``GET /orders/deleted`` as deleted at ``deleted_at`` (Unix seconds; default now)."""
        self._app.delete_order(store_id, order_id, deleted_at)

    def store_currency(self, store_id: int | str) -> str:
        """The store's currency (``KeyError`` for an unknown store)."""
        with self._app.lock:
            return self._app.store(store_id).currency

    def deleted_orders(self, store_id: int | str) -> list[dict[str, Any]]:
        """The store's deleted-items history, oldest first (``{"id", "orderId", "date"}``)."""
        with self._app.lock:
            return [copy.deepcopy(entry) for _, entry in self._app.store(store_id).deleted]

    def order(self, store_id: int | str, order_id: int | str) -> dict[str, Any] | None:
        """A copy of a stored order, or None."""
        with self._app.lock:
            store = self._app.store(store_id)
            public = store.resolve(_order_key(order_id))
            return None if public is None else copy.deepcopy(store.orders[public])

    def orders(self, store_id: int | str) -> list[dict[str, Any]]:
        """Copies of every order of a store, in the order they were first stored."""
        with self._app.lock:
            return copy.deepcopy(list(self._app.store(store_id).orders.values()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    parser = cli_parser("ecwid", "Local stand-in for Ecwid's REST API v3.", 4020)
    parser.add_argument("--store", action="append", help="ID:TOKEN[:CURRENCY] (repeatable)")
    parser.add_argument("--order", action="append", default=[], help="STORE_ID:FILE (repeatable)")
    args = parser.parse_args(argv)
    fake, listed = FakeEcwid(host=args.host, port=args.port), []
    try:
        for given in args.store or ["1003:secret_token"]:
            store_id, _, token = given.partition(":")
            head, _, tail = token.rpartition(":")
            token, currency = (head, tail) if head and _CURRENCY_RE.match(tail) else (token, "USD")
            fake.add_store(store_id, token, currency)
            listed.append(f"{store_id} ({currency.upper()})")
        for given in args.order:
            store_id, _, path = given.partition(":")
            fake.put_order(store_id, loads(Path(path).read_bytes()))
    except (OSError, ValueError, KeyError) as error:
        parser.error(str(error))
    return serve_until_signalled(fake, "Fake Ecwid API", f"stores: {', '.join(listed)}")


if __name__ == "__main__":
    raise SystemExit(main())
