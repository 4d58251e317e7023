"""Local stand-in for the Stripe REST API (reads only), for the tests and the local stack.

The bridge decides Stripe commissions from a payment's current state, read with a read-only
key and a pinned ``Stripe-Version``. Real Stripe cannot be reached from CI, and localstripe
ignores ``Stripe-Version`` and lacks checkout sessions, disputes, invoice payments and refund
statuses, so the bridge is pointed at this fake (``STRIPE_API_URL=<fake.url>``,
``STRIPE_API_KEY=<one of its keys>``). It serves objects loaded from Stripe events, following
Stripe's documented behaviour (docs.stripe.com/api) as far as ``partnero_bridge.stripe.client``
relies on it:

* ``Authorization: Bearer <key>`` naming a configured key, else 401; a key sees only objects of
  its mode (``livemode``), a connected account's objects (an event's ``account``) only with
  ``Stripe-Account``; reads only (405);
* ``Stripe-Version``: absent, objects are answered as loaded (the account's version); the pinned
  ``2025-03-31.basil`` converts older objects to its shape (docs/testing.md, "Stripe version
  conversions"); any other version is 400, so a drift is caught;
* ``GET /v1/<resource>/{id}`` (404 ``resource_missing`` when unknown); ``expand[]`` (or
  ``expand[N]``; ``data.`` on lists; at most 4 levels) replaces an id by its object, and
  includes a charge's ``refunds`` and an invoice's ``payments``;
* lists (``/api/pagination``): newest first, ``{"object": "list", "data", "has_more", "url"}``,
  ``limit`` 1-100 (default 10), ``starting_after`` (an object of the list's type, matching the
  filters or not), ``created`` / ``created[gt|gte|lt|lte]``, the filters of :data:`_LIST_FILTERS`;
  any other parameter is 400;
* events (``/api/events/list``): those of the last 30 days by the fake's clock, as created,
  by ``type`` (``*`` a wildcard) or ``types[]`` (at most 20, not with ``type``);
* optionally (``rate_limit_per_second``) Stripe's rate limiter: past that many requests in a
  second per account and mode, 429 ``rate_limit`` (``/rate-limits``, ``/error-codes``).

Derived on every read, by Stripe's rules (listed in docs/testing.md): a charge's refund totals
and ``disputed``, a PaymentIntent's null ``latest_charge``, the invoice payments of an invoice
loaded before basil; refunds listed by ``payment_intent`` include those of its charges.

Replay (the field cases' rules): :meth:`FakeStripeApi.load_event` makes every object the event
carries visible (``data.object`` and each nested object with an ``id`` and an ``object`` type).
For each id the newest carried snapshot wins by the event's ``created`` (on a tie, the later
load); ``extra_objects`` (a step's ``stripe_objects``) are served only until an event carries
that id.

Admin interface under ``/_stripe`` (see :mod:`.fakeapp` for the shared endpoints): ``POST events``
(``{"event", "stripe_objects"}``), ``PUT events`` (events for ``/v1/events`` only), ``PUT
objects`` (``{"objects", "api_version", "created"}``), ``DELETE objects`` (forget every object and
event), ``GET|PUT settings`` (``{"rate_limit_per_second": N | null}``).

Run it in the foreground with::

    python -m partnero_bridge_cli.local.stripe_api --port 4030 --key rk_test_local_demo
"""

from __future__ import annotations

import bisect
import copy
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar, Final

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from partnero_bridge_cli.local.fakeapp import (
    FakeApp,
    FakeService,
    RateSetting,
    cli_parser,
    dumps,
    json_response,
    loads,
    phrase,
    serve_until_signalled,
)

__all__ = ["DEMO_API_KEY", "PINNED_VERSION", "FakeStripeApi", "main"]

PINNED_VERSION: Final = "2025-03-31.basil"
DEMO_API_KEY: Final = "rk_test_local_demo"

_REFUNDS_SPLIT: Final = "2022-11-15"
_MAX_EXPAND_DEPTH: Final = 4
_MAX_LIMIT: Final = 100
_COUNTING_REFUNDS: Final = frozenset({"pending", "requires_action", "succeeded"})
# Events are listed and retrieved for 30 days (/api/events/list: "going back up to 30 days").
EVENT_RETENTION_SECONDS: Final = 30 * 24 * 3600
_MAX_EVENT_TYPES: Final = 20

# Retrieve routes: path -> object type.
_KINDS: Final = ("charge", "payment_intent", "invoice", "subscription", "customer", "refund")
_RESOURCES: Final[Mapping[str, str]] = {
    f"{kind}s": kind for kind in (*_KINDS, "dispute", "invoice_payment", "event")
} | {"checkout/sessions": "checkout.session"}
# List routes: path -> the filters served (Stripe's "List all ..." of each resource), each an
# equality on a property naming an id. Events take ``type`` / ``types[]`` instead.
_LIST_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    "payment_intents": ("customer",),
    "charges": ("payment_intent", "customer"),
    "invoices": ("subscription", "customer"),
    "checkout/sessions": ("subscription", "payment_intent", "customer"),
    "refunds": ("charge", "payment_intent"),
    "disputes": ("charge", "payment_intent"),
    "invoice_payments": ("invoice", "payment[type]", "payment[payment_intent]"),
    "events": (),
}
_EXPAND_PARAM: Final = re.compile(r"^expand\[\d*\]$")
_CREATED_PARAM: Final = re.compile(r"^created(?:\[(gt|gte|lt|lte)\])?$")
_TYPES_PARAM: Final = re.compile(r"^types\[\d*\]$")
# Properties Stripe answers as an id unless expanded.
_EXPANDABLE: Final = frozenset(
    {"charge", "customer", "dispute", "invoice", "latest_charge", "latest_invoice"}
    | {"payment_intent", "refund", "subscription"}
)
_NOT_INDEXED: Final = frozenset({"list", "event", "line_item", "search_result"})
_INVOICE_REMOVED: Final = (
    *("charge", "payment_intent", "subscription", "subscription_details", "paid"),
    *("paid_out_of_band", "tax", "total_tax_amounts", "tax_percent", "date", "billing"),
    *("closed", "forgiven", "application_fee"),
)


def _date(version: str | None) -> str:
    """The date part of an API version (``2025-03-31.basil`` -> ``2025-03-31``)."""
    return (version or PINNED_VERSION)[:10]


def _mask(key: str) -> str:
    return f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"


def _integer(value: Any) -> int:
    return value if type(value) is int else 0


def _id_of(value: Any) -> str | None:
    """The id a property holds: itself when a string, an expanded object's ``id``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _json_copy(value: Any) -> Any:
    """A private copy of JSON data, non-integer numbers as exact ``Decimal`` (the C encoder
    first: seeding thousands of objects must be quick)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False), parse_float=Decimal)
    except TypeError:
        return loads(dumps(value))


def _created_of(obj: Mapping[str, Any]) -> int:
    """An object's ``created`` (Unix seconds); an invoice older than 2019 has ``date``."""
    if obj.get("created") is None and obj.get("object") == "invoice":
        return _integer(obj.get("date"))
    return _integer(obj.get("created"))


def _nested_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every Stripe object in ``value`` (itself included) that has an ``id`` and a type."""
    if isinstance(value, dict):
        kind, object_id = value.get("object"), value.get("id")
        if isinstance(kind, str) and isinstance(object_id, str) and kind not in _NOT_INDEXED:
            yield value
        for item in value.values():
            yield from _nested_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nested_objects(item)


@dataclass
class StripeError(Exception):
    """An error answered in Stripe's shape: ``{"error": {"type", "message", ...}}``."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    kind: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", param=name) from None


def _expansions(query: list[tuple[str, str]]) -> list[str]:
    """The ``expand[]`` / ``expand[N]`` values, checked against Stripe's depth limit."""
    paths = [value for param, value in query if _EXPAND_PARAM.match(param)]
    for path in paths:
        if not path or any(not part for part in path.split(".")):
            raise StripeError(400, f"Invalid expand path: {path!r}", param="expand")
        if len([p for p in path.split(".") if p != "data"]) > _MAX_EXPAND_DEPTH:
            message = f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property."
            raise StripeError(400, f"{message[:-1]} ({path}).", param="expand")
    return paths


# ---- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Access:
    """Who is reading: the key's mode, the connected account and the answer's version."""

    livemode: bool
    account: str | None
    version: str | None


@dataclass(frozen=True)
class _Origin:
    """Where a snapshot came from: who sees it and whether a later one replaces it."""

    version: str | None
    carried: bool
    """True when an event carried it; False for a ``stripe_objects`` entry."""
    created: int = 0
    """The carrying event's ``created`` (0 for an extra object)."""
    livemode: bool = False
    account: str | None = None
    event: str | None = None

    @classmethod
    def of_event(cls, event: Mapping[str, Any]) -> _Origin:
        if type(event.get("created")) is not int:
            raise ValueError("an event needs an integer created time")
        api_version, account, event_id = (
            event.get(name) if isinstance(event.get(name), str) else None
            for name in ("api_version", "account", "id")
        )
        livemode = bool(event.get("livemode", False))
        return cls(api_version, True, event["created"], livemode, account, event_id)


@dataclass
class _Snapshot:
    """One object as loaded."""

    obj: dict[str, Any]
    kind: str
    origin: _Origin
    seq: int
    """Load order of the first snapshot of this id: the tie-break among equal ``created``."""

    @property
    def object_id(self) -> str:
        return str(self.obj["id"])

    @property
    def sort_key(self) -> tuple[int, int]:
        """Lists are newest first: by the object's ``created``, then the later loaded."""
        return _created_of(self.obj), self.seq

    def visible_to(self, access: _Access) -> bool:
        origin = self.origin
        return origin.livemode == access.livemode and origin.account == access.account

    def summary(self) -> dict[str, Any]:
        source = "event" if self.origin.carried else "stripe_objects"
        fields = {"id": self.object_id, "object": self.kind, "source": source}
        return asdict(self.origin) | {"api_version": self.origin.version} | fields


@dataclass
class _Ordered:
    """Snapshots newest first, each with its position in its type's whole list (cursors)."""

    items: list[_Snapshot] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def add(self, snapshot: _Snapshot, position: int) -> None:
        self.items.append(snapshot)
        self.positions.append(position)


class _Index:
    """Lookups derived from what the store holds, built on the first read after a change:
    a seeded history of thousands of payments is paged and read often, written rarely."""

    def __init__(self, store: _Store) -> None:
        snapshots = [*store.objects.values(), *store.events.values()]
        # A payment derived from an older invoice never hides one loaded with its id.
        snapshots += [
            derived
            for derived in store.derived_invoice_payments()
            if ("invoice_payment", derived.object_id) not in store.objects
        ]
        self.snapshots: dict[tuple[str, str], _Snapshot] = {}
        self.by_kind: dict[str, _Ordered] = {}
        self.position: dict[tuple[str, str], int] = {}
        self._by_value: dict[tuple[str, str], dict[str, _Ordered]] = {}
        for snapshot in sorted(snapshots, key=lambda s: s.sort_key, reverse=True):
            key = (snapshot.kind, snapshot.object_id)
            if key not in self.snapshots:  # two derived payments with one id: the newer stands
                ordered = self.by_kind.setdefault(snapshot.kind, _Ordered())
                self.snapshots[key] = snapshot
                self.position[key] = len(ordered.items)
                ordered.add(snapshot, len(ordered.items))

    def ordered(self, kind: str) -> _Ordered:
        return self.by_kind.get(kind, _Ordered())

    def with_value(self, kind: str, param: str, value: str) -> _Ordered:
        """The snapshots of ``kind`` whose filter ``param`` names ``value``, newest first."""
        table = self._by_value.get((kind, param))
        if table is None:
            table = {}
            ordered = self.ordered(kind)
            for snapshot, position in zip(ordered.items, ordered.positions, strict=True):
                for held in self.values(kind, param, snapshot.obj):
                    table.setdefault(held, _Ordered()).add(snapshot, position)
            self._by_value[(kind, param)] = table
        return table.get(value, _Ordered())

    def values(self, kind: str, param: str, obj: Mapping[str, Any]) -> set[str]:
        """What a list filter compares with, read from the object as held (any version)."""
        found = {_id_of(obj.get(param))}
        if kind == "invoice" and param == "subscription":
            parent = obj.get("parent") or {}
            found.add(_id_of((parent.get("subscription_details") or {}).get("subscription")))
        elif param.startswith("payment["):
            found = {_id_of((obj.get("payment") or {}).get(param[len("payment[") : -1]))}
        elif kind == "refund" and param == "payment_intent":
            # A refund made on a charge still belongs to that charge's PaymentIntent.
            charge = self.snapshots.get(("charge", _id_of(obj.get("charge")) or ""))
            found.add(_id_of(charge.obj.get("payment_intent")) if charge else None)
        return {value for value in found if value}

    def related(self, kind: str, param: str, value: str, access: _Access) -> list[_Snapshot]:
        """The visible snapshots of ``kind`` naming ``value`` in ``param``, newest first."""
        return [s for s in self.with_value(kind, param, value).items if s.visible_to(access)]


@dataclass
class _Store:
    """The objects held, by type and id, and the events; every read is derived from them."""

    objects: dict[tuple[str, str], _Snapshot] = field(default_factory=dict)
    events: dict[str, _Snapshot] = field(default_factory=dict)
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _index: _Index | None = None

    def index(self) -> _Index:
        if self._index is None:
            self._index = _Index(self)
        return self._index

    def load_event(self, event: Mapping[str, Any], extra: Iterable[Mapping[str, Any]]) -> int:
        data = event.get("data") if isinstance(event, Mapping) else None
        carried = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(carried, Mapping):
            raise ValueError("an event needs data.object")
        origin = _Origin.of_event(event)
        objects = list(_nested_objects(_json_copy(carried)))
        extras = [self.checked(given) for given in extra]
        for obj in objects:
            self.put(obj, origin)
        for obj in extras:
            self.put(obj, replace(origin, carried=False, created=0))
        if origin.event and isinstance(event.get("type"), str):
            self.record_event(event)  # listed by /v1/events too, as Stripe keeps it
        return len(objects) + len(extras)

    def record_event(self, event: Mapping[str, Any]) -> None:
        """Keep an event for ``/v1/events`` as given (its objects are not loaded)."""
        body = _json_copy(event) if isinstance(event, Mapping) else {}
        if not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
            raise ValueError('an event needs a string "id" and "type"')
        body.setdefault("object", "event")
        held = self.events.get(body["id"])
        seq = held.seq if held is not None else next(self.seq)
        self.events[body["id"]] = _Snapshot(body, "event", _Origin.of_event(body), seq)
        self._index = None

    @staticmethod
    def checked(given: Mapping[str, Any]) -> dict[str, Any]:
        obj = _json_copy(given) if isinstance(given, Mapping) else None
        if not isinstance(obj, dict) or not all(
            isinstance(obj.get(k), str) for k in ("id", "object")
        ):
            raise ValueError('a Stripe object needs a string "id" and "object"')
        return obj

    def put(self, obj: dict[str, Any], origin: _Origin) -> None:
        key = (str(obj["object"]), str(obj["id"]))
        held = self.objects.get(key)
        # An extra object is served only until an event carries its id; an older snapshot
        # never replaces a newer one.
        kept = held.origin if held is not None and held.origin.carried else None
        if kept is not None and (not origin.carried or origin.created < kept.created):
            return
        origin = replace(origin, livemode=bool(obj.get("livemode", origin.livemode)))
        seq = held.seq if held is not None else next(self.seq)
        self.objects[key] = _Snapshot(obj, key[0], origin, seq)
        self._index = None

    def get(self, kind: str, object_id: str, access: _Access) -> _Snapshot | None:
        snapshot = self.index().snapshots.get((kind, object_id))
        return snapshot if snapshot is not None and snapshot.visible_to(access) else None

    def find(self, object_id: str, access: _Access) -> _Snapshot | None:
        """An object by id alone (for ``expand``), of any served type."""
        found = (self.get(kind, object_id, access) for kind in _RESOURCES.values())
        return next((snapshot for snapshot in found if snapshot is not None), None)

    def refunds_list(self, charge_id: str, access: _Access) -> dict[str, Any]:
        refunds = self.index().related("refund", "charge", charge_id, access)
        data = [self.render(r, access) for r in refunds]
        return _list_body(data, f"/v1/charges/{charge_id}/refunds", has_more=False)

    def payments_list(self, invoice_id: str, access: _Access) -> dict[str, Any]:
        payments = self.index().related("invoice_payment", "invoice", invoice_id, access)
        data = [self.render(p, access) for p in payments]
        return _list_body(data, f"/v1/invoices/{invoice_id}/payments", has_more=False)

    def render(self, snapshot: _Snapshot, access: _Access) -> dict[str, Any]:
        """The object as Stripe would answer it now (not expanded)."""
        obj = copy.deepcopy(snapshot.obj)
        if snapshot.kind == "event":
            return obj  # an event is answered in the version it was created in
        convert = _CONVERSIONS.get(snapshot.kind)
        if (
            access.version is not None
            and convert
            and _date(snapshot.origin.version) < _date(access.version)
        ):
            convert(obj, snapshot.origin.version)
        derive = _DERIVED.get(snapshot.kind)
        if derive is not None:
            derive(self, obj, access)
        for name in _EXPANDABLE:
            if _id_of(obj.get(name)) is not None:
                obj[name] = _id_of(obj[name])
        return obj

    def derived_invoice_payments(self) -> list[_Snapshot]:
        """One InvoicePayment per payment a pre-basil invoice names, unless one was loaded."""
        held = self.objects.items()
        named = {_payment_target(s.obj) for (kind, _), s in held if kind == "invoice_payment"}
        invoices = [s for (kind, _), s in held if kind == "invoice"]
        return [
            _Snapshot(payment, "invoice_payment", replace(s.origin, version=PINNED_VERSION), s.seq)
            for s in invoices
            if _date(s.origin.version) < _date(PINNED_VERSION)
            for payment in _payments_of_legacy_invoice(s.obj)
            if _payment_target(payment) not in named
        ]


def _list_body(data: list[dict[str, Any]], url: str, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _derive_charge(store: _Store, obj: dict[str, Any], access: _Access) -> None:
    refunds = store.index().related("refund", "charge", str(obj["id"]), access)
    if refunds:
        counted = [r.obj for r in refunds if r.obj.get("status") in _COUNTING_REFUNDS]
        refunded = sum(_integer(refund.get("amount")) for refund in counted)
        obj["amount_refunded"] = refunded
        obj["refunded"] = refunded >= _integer(obj.get("amount")) and refunded > 0
        if isinstance(obj.get("refunds"), dict):
            obj["refunds"] = store.refunds_list(str(obj["id"]), access)
    if store.index().related("dispute", "charge", str(obj["id"]), access):
        obj["disputed"] = True


def _derive_payment_intent(store: _Store, obj: dict[str, Any], access: _Access) -> None:
    if obj.get("latest_charge") is None:
        charges = store.index().related("charge", "payment_intent", str(obj["id"]), access)
        if charges:
            obj["latest_charge"] = charges[0].object_id


def _derive_invoice(store: _Store, obj: dict[str, Any], access: _Access) -> None:
    if access.version is not None:
        obj.pop("payments", None)  # included only when expanded


_DERIVED: Final[Mapping[str, Callable[[_Store, dict[str, Any], _Access], None]]] = {
    "charge": _derive_charge,
    "payment_intent": _derive_payment_intent,
    "invoice": _derive_invoice,
}


# ---- invoices before basil and the conversions to the pinned version ------------------------


def _payment_target(payment: Mapping[str, Any]) -> tuple[Any, ...]:
    inner = payment.get("payment") or {}
    kind = inner.get("type")
    return payment.get("invoice"), kind, inner.get(kind) if isinstance(kind, str) else None


def _legacy_amount_paid(invoice: Mapping[str, Any]) -> int:
    """``amount_paid`` of a pre-basil invoice, leaving out-of-band money out (as it did)."""
    if "amount_paid" in invoice:
        return _integer(invoice.get("amount_paid"))
    paid_on_stripe = invoice.get("paid") and not invoice.get("paid_out_of_band")
    return _amount_due(invoice) if paid_on_stripe else 0


def _amount_due(invoice: Mapping[str, Any]) -> int:
    return _integer(invoice.get("amount_due", invoice.get("total")))


def _payments_of_legacy_invoice(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    invoice_id = str(invoice["id"])
    paid = bool(invoice.get("paid")) or invoice.get("status") == "paid"
    created = _integer(invoice.get("created", invoice.get("date")))
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or created

    def payment(kind: str, target: str | None, amount: int, default: bool) -> dict[str, Any]:
        inner = {"type": kind} | ({kind: target} if target is not None else {})
        suffix = invoice_id.removeprefix("in_") + ("" if default else f"_{kind}")
        return {
            "id": f"inpay_{suffix}",
            "object": "invoice_payment",
            "amount_paid": amount if paid else None,
            "amount_requested": amount,
            "created": created,
            "currency": invoice.get("currency"),
            "invoice": invoice_id,
            "is_default": default,
            "livemode": bool(invoice.get("livemode", False)),
            "payment": inner,
            "status": "paid" if paid else "open",
            "status_transitions": {"canceled_at": None, "paid_at": paid_at if paid else None},
        }

    found: list[dict[str, Any]] = []
    on_stripe = _legacy_amount_paid(invoice)
    for kind in ("payment_intent", "charge"):
        target = _id_of(invoice.get(kind))
        if target is not None and not found:
            found.append(payment(kind, target, on_stripe or _amount_due(invoice), True))
    if invoice.get("paid_out_of_band"):
        outside = max(_amount_due(invoice) - on_stripe, 0)
        found.append(payment("out_of_band_payment", None, outside, not found))
    return found


def _invoice_amounts(obj: dict[str, Any]) -> None:
    amount_paid = _legacy_amount_paid(obj)
    if obj.get("paid_out_of_band"):  # out-of-band money counts in amount_paid from basil on
        amount_paid = max(amount_paid, _amount_due(obj))
        obj["amount_remaining"] = 0
    obj["amount_paid"] = amount_paid
    obj.setdefault("amount_remaining", max(_amount_due(obj) - amount_paid, 0))
    if "total" in obj:
        obj.setdefault("total_excluding_tax", _integer(obj["total"]) - _integer(obj.get("tax")))
    if "status" not in obj:
        obj["status"] = (
            "paid" if obj.get("paid") else "uncollectible" if obj.get("forgiven") else "open"
        )


def _convert_invoice(obj: dict[str, Any], version: str | None) -> None:
    _invoice_amounts(obj)
    renames = {"date": "created", "billing": "collection_method"}
    for old, new in (renames | {"application_fee": "application_fee_amount"}).items():
        if old in obj:
            obj.setdefault(new, obj[old])
    if "closed" in obj:
        obj.setdefault("auto_advance", not obj["closed"])
    subscription = _id_of(obj.get("subscription"))
    if obj.get("parent") is None:
        metadata = (obj.get("subscription_details") or {}).get("metadata")
        details = {"metadata": metadata, "subscription": subscription}
        parent = {"type": "subscription_details", "quote_details": None}
        obj["parent"] = parent | {"subscription_details": details} if subscription else None
    for name in _INVOICE_REMOVED:
        obj.pop(name, None)


def _convert_charge(obj: dict[str, Any], version: str | None) -> None:
    if _date(version) < _REFUNDS_SPLIT:
        obj.pop("refunds", None)
    obj.pop("invoice", None)


def _convert_payment_intent(obj: dict[str, Any], version: str | None) -> None:
    if _date(version) < _REFUNDS_SPLIT:
        charges = (obj.pop("charges", None) or {}).get("data") or [{}]
        obj.setdefault("latest_charge", _id_of(charges[0]))
    obj.pop("invoice", None)


def _convert_customer(obj: dict[str, Any], version: str | None) -> None:
    if "account_balance" in obj:
        obj.setdefault("balance", obj.pop("account_balance"))
    for name in ("sources", "subscriptions", "tax_ids"):  # not included since 2020-08-27
        obj.pop(name, None)


_CONVERSIONS: Final[Mapping[str, Callable[[dict[str, Any], str | None], None]]] = {
    "invoice": _convert_invoice,
    "charge": _convert_charge,
    "payment_intent": _convert_payment_intent,
    "customer": _convert_customer,
}


# ---- lists ---------------------------------------------------------------------------------


@dataclass
class _ListAsk:
    """A list request's parameters, checked."""

    filters: dict[str, str] = field(default_factory=dict)
    lower: int | None = None
    upper: int | None = None
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    event_type: Callable[[str], bool] | None = None

    def bound(self, op: str, value: int) -> None:
        if op in ("gt", "gte", "eq"):
            low = value + (op == "gt")
            self.lower = low if self.lower is None else max(self.lower, low)
        if op in ("lt", "lte", "eq"):
            high = value - (op == "lt")
            self.upper = high if self.upper is None else min(self.upper, high)

    @classmethod
    def parse(cls, name: str, query: list[tuple[str, str]]) -> _ListAsk:
        ask, types, pattern = cls(), [], None
        allowed = {*_LIST_FILTERS[name], "limit", "starting_after", "ending_before"}
        for param, value in query:
            created = _CREATED_PARAM.match(param)
            if created:
                ask.bound(created[1] or "eq", _int_param(param, value))
            elif name == "events" and _TYPES_PARAM.match(param):
                types.append(value)
            elif name == "events" and param == "type":
                pattern = value
            elif param in allowed:
                ask.filters[param] = value
            elif not _EXPAND_PARAM.match(param):
                raise StripeError(400, f"Received unknown parameter: {param}", param=param)
        ask.limit = _int_param("limit", ask.filters.pop("limit", "10"))
        if not 1 <= ask.limit <= _MAX_LIMIT:
            raise StripeError(
                400, f"Invalid limit: must be between 1 and {_MAX_LIMIT}", param="limit"
            )
        ask.starting_after = ask.filters.pop("starting_after", None)
        ask.ending_before = ask.filters.pop("ending_before", None)
        if ask.starting_after is not None and ask.ending_before is not None:
            message = "You may only specify one of these parameters: ending_before, starting_after."
            raise StripeError(400, message)
        ask.event_type = _event_types(pattern, types) if name == "events" else None
        return ask

    def matches(self, index: _Index, kind: str, snapshot: _Snapshot, access: _Access) -> bool:
        if not snapshot.visible_to(access):
            return False
        if any(v not in index.values(kind, p, snapshot.obj) for p, v in self.filters.items()):
            return False
        if self.event_type is not None and not self.event_type(str(snapshot.obj.get("type"))):
            return False
        stamp = _created_of(snapshot.obj)
        return (self.lower is None or stamp >= self.lower) and (
            self.upper is None or stamp <= self.upper
        )


def _event_types(pattern: str | None, types: list[str]) -> Callable[[str], bool] | None:
    """``type`` ("a specific event name, or group of events using * as a wildcard") or
    ``types`` ("an array of up to 20 strings"), "but not both" (/api/events/list)."""
    if pattern is not None and types:
        message = "You may only specify one of these parameters: type, types."
        raise StripeError(400, message, param="types")
    if len(types) > _MAX_EVENT_TYPES:
        message = f"Invalid array: types must have at most {_MAX_EVENT_TYPES} elements"
        raise StripeError(400, message, param="types")
    if types:
        return frozenset(types).__contains__
    if pattern is not None:
        compiled = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        return lambda kind: compiled.fullmatch(kind) is not None
    return None


# ---- the application -----------------------------------------------------------------------

_API_RULES: Final = Map(
    [Rule(f"/v1/{name}", endpoint=("list", name)) for name in _LIST_FILTERS]
    + [Rule(f"/v1/{name}/<object_id>", endpoint=("get", name)) for name in _RESOURCES],
    strict_slashes=False,
)
_NO_KEY: Final = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
)


class _App(FakeApp):
    """All state of the fake, guarded by one lock, and the request handling that works on it."""

    api_prefix: ClassVar[str] = "/v1"
    admin_prefix: ClassVar[str] = "/_stripe"

    def __init__(
        self,
        api_keys: Iterable[str],
        pinned_version: str,
        clock: Callable[[], float],
        per_second: int | None,
    ) -> None:
        super().__init__()
        self.store = _Store()
        self.keys: set[str] = set()
        self.pinned_version = pinned_version
        self.clock = clock
        self.rate = RateSetting("rate_limit_per_second", 1.0, per_second)
        for key in api_keys:
            self.add_key(key)

    def add_key(self, key: str) -> None:
        if not isinstance(key, str) or not key or any(ch.isspace() for ch in key):
            raise ValueError("a Stripe API key must be a non-empty string without spaces")
        with self.lock:
            self.keys.add(key)

    def now(self) -> int:
        return int(self.clock())

    def clear(self) -> None:
        self.store = _Store()

    # ---- admin -----------------------------------------------------------------------------

    def admin_rules(self) -> Iterable[Rule]:
        return [
            Rule("/events", methods=["POST"], endpoint=self.admin_load_event),
            Rule("/events", methods=["PUT"], endpoint=self.admin_add_events),
            Rule("/objects", methods=["PUT"], endpoint=self.admin_put_objects),
            Rule("/objects", methods=["DELETE"], endpoint=self.admin_clear),
            Rule("/settings", methods=["GET"], endpoint=lambda _: self.rate.json()),
            Rule("/settings", methods=["PUT"], endpoint=lambda body: self.rate.put(body)),
        ]

    def admin_load_event(self, body: Any) -> dict[str, int]:
        if not isinstance(body, dict):
            raise ValueError('expected {"event": {...}, "stripe_objects": [...]}')
        event = body.get("event", body if "data" in body else None)
        extra = body.get("stripe_objects") or []
        if not isinstance(event, dict) or not isinstance(extra, list):
            raise ValueError("an event must be a JSON object, stripe_objects a list")
        return {"loaded": self.store.load_event(event, extra)}

    def admin_add_events(self, body: Any) -> dict[str, int]:
        events = body if isinstance(body, list) else (body or {}).get("events")
        if not isinstance(events, list):
            raise ValueError('expected {"events": [...]} or a list of events')
        for event in events:
            self.store.record_event(event)
        return {"recorded": len(events)}

    def admin_put_objects(self, body: Any) -> dict[str, int]:
        given = {"objects": body} if isinstance(body, list) else body
        if not isinstance(given, dict) or not isinstance(given.get("objects"), list):
            raise ValueError('expected {"objects": [...]} or a list of objects')
        return {
            "loaded": self.put_objects(
                given["objects"], given.get("api_version"), given.get("created")
            )
        }

    def admin_clear(self, _: Any) -> dict[str, bool]:
        self.clear()
        return {"ok": True}

    def put_objects(self, objects: Iterable[Mapping[str, Any]], version: Any, created: Any) -> int:
        if version is not None and not isinstance(version, str):
            raise ValueError("api_version must be a string")
        if created is not None and type(created) is not int:
            raise ValueError("created must be an integer")
        checked = [self.store.checked(given) for given in objects]
        for obj in checked:
            self.store.put(obj, _Origin(version, created is not None, created or 0))
        return len(checked)

    def admin_state(self) -> Any:
        return {
            "pinned_version": self.pinned_version,
            "api_keys": sorted(_mask(key) for key in self.keys),
            "objects": [s.summary() for s in self.store.objects.values()],
            "event_count": len(self.store.events),
            "request_count": len(self.recorded()),
        } | self.rate.json()

    # ---- the API ---------------------------------------------------------------------------

    def fault_response(self, status: int) -> Response:
        error = StripeError(status, phrase(status, "Fake Stripe fault"), kind="api_error")
        return json_response(status, error.body())

    def answer(self, request: Request, path: str) -> Response:
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        version = request.headers.get("Stripe-Version", "").strip() or None
        account = request.headers.get("Stripe-Account") or None
        access = _Access("_live_" in key, account, version)
        try:
            if self.rate.admit(f"{account}:{access.livemode}") is not None:
                # /rate-limits: a 429 with the code rate_limit ("Too many requests hit the API
                # too quickly"), of type invalid_request_error as the SDKs read it.
                message = "Request rate limit exceeded. See https://stripe.com/docs/rate-limits."
                raise StripeError(429, message, code="rate_limit")
            with self.lock:
                body, status = self.read(request, path, key, access), 200
        except StripeError as error:
            body, status = error.body(), error.status
        headers = {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}
        if version == self.pinned_version:
            headers["Stripe-Version"] = version
        return json_response(status, body, headers)

    def read(self, request: Request, path: str, key: str, access: _Access) -> dict[str, Any]:
        if not key:
            raise StripeError(401, _NO_KEY)
        if not any(hmac.compare_digest(key, held) for held in self.keys):
            raise StripeError(401, f"Invalid API Key provided: {_mask(key)}")
        if access.version is not None and access.version != self.pinned_version:
            message = f"Stripe-Version {access.version} is not served: only {self.pinned_version}"
            raise StripeError(400, message, param="Stripe-Version")
        try:
            (action, name), args = _API_RULES.bind("stripe").match(path, method="GET")
        except HTTPException:
            message = f"Unrecognized request URL ({request.method}: {path})."
            raise StripeError(404, message) from None
        if request.method not in ("GET", "HEAD"):
            raise StripeError(405, f"This fake serves reads only, not {request.method} {path}")
        query = list(request.args.items(multi=True))
        if action == "get":
            obj = self.retrieve(_RESOURCES[name], str(args["object_id"]), access)
        else:
            obj = self.list_objects(name, query, access)
        for expand in _expansions(query):
            obj = self.expand(obj, expand.split("."), access, expand)
        return obj

    def retrieve(self, kind: str, object_id: str, access: _Access) -> dict[str, Any]:
        snapshot = self.store.get(kind, object_id, access)
        if snapshot is not None and kind == "event" and not self.kept(snapshot):
            snapshot = None
        if snapshot is None:
            error = _missing(kind, object_id)
            other = _Access(not access.livemode, access.account, access.version)
            if self.store.get(kind, object_id, other) is not None:
                modes = ("test", "live") if access.livemode else ("live", "test")
                error.message += (
                    f"; a similar object exists in {modes[0]} mode, but a {modes[1]} mode key "
                    "was used to make this request."
                )
            raise error
        return self.store.render(snapshot, access)

    def kept(self, snapshot: _Snapshot) -> bool:
        """Whether Stripe still serves this event (created in the last 30 days)."""
        return _created_of(snapshot.obj) >= self.now() - EVENT_RETENTION_SECONDS

    def expand(
        self, obj: dict[str, Any], path: list[str], access: _Access, whole: str
    ) -> dict[str, Any]:
        name, rest = path[0], path[1:]
        if obj.get("object") == "list" and name == "data":
            data = [item for item in obj.get("data") or [] if isinstance(item, dict)]
            obj["data"] = [
                self.expand(item, rest, access, whole) if rest else item for item in data
            ]
            return obj
        value = obj.get(name)
        if obj.get("object") == "charge" and name == "refunds" and not isinstance(value, dict):
            value = self.store.refunds_list(str(obj["id"]), access)
        elif obj.get("object") == "invoice" and name == "payments" and not isinstance(value, dict):
            value = self.store.payments_list(str(obj["id"]), access)
        elif isinstance(value, str):
            found = self.store.find(value, access)
            if found is None:
                return obj  # an id the fake holds nothing for stays an id
            value = self.store.render(found, access)
        elif value is None and name in obj:
            return obj
        elif not isinstance(value, dict):
            raise StripeError(400, f"This property cannot be expanded ({whole}).", param="expand")
        obj[name] = self.expand(value, rest, access, whole) if rest else value
        return obj

    def list_objects(
        self, name: str, query: list[tuple[str, str]], access: _Access
    ) -> dict[str, Any]:
        """A page, newest first, after ``starting_after`` or before ``ending_before`` (whether
        or not it matches the filters); ``has_more``: more objects lie beyond it that way."""
        kind, ask = _RESOURCES[name], _ListAsk.parse(name, query)
        if kind == "event":
            oldest = self.now() - EVENT_RETENTION_SECONDS
            ask.lower = oldest if ask.lower is None else max(ask.lower, oldest)
        index = self.store.index()
        first = next(iter(ask.filters.items()), None)
        found = index.with_value(kind, *first) if first else index.ordered(kind)
        if ask.ending_before is not None:  # walk towards newer objects, answer newest first
            end = bisect.bisect_left(found.positions, self.cursor(kind, ask, access))
            page = self.walk(reversed(found.items[:end]), ask, kind, access, newer=True)
            chosen = page[: ask.limit][::-1]
        else:
            start = 0
            if ask.starting_after is not None:
                start = bisect.bisect_right(found.positions, self.cursor(kind, ask, access))
            page = self.walk(itertools.islice(found.items, start, None), ask, kind, access)
            chosen = page[: ask.limit]
        data = [self.store.render(snapshot, access) for snapshot in chosen]
        return _list_body(data, f"/v1/{name}", has_more=len(page) > ask.limit)

    def cursor(self, kind: str, ask: _ListAsk, access: _Access) -> int:
        """The place in its type's list of the object a cursor names (404 if none)."""
        param = "ending_before" if ask.ending_before is not None else "starting_after"
        object_id = str(ask.ending_before or ask.starting_after)
        if self.store.get(kind, object_id, access) is None:
            raise _missing(kind, object_id, param=param)
        return self.store.index().position[(kind, object_id)]

    def walk(
        self,
        snapshots: Iterable[_Snapshot],
        ask: _ListAsk,
        kind: str,
        access: _Access,
        newer: bool = False,
    ) -> list[_Snapshot]:
        """Up to ``limit + 1`` matching objects, stopping where the ``created`` window ends."""
        page: list[_Snapshot] = []
        index = self.store.index()
        for snapshot in snapshots:
            stamp, edge = _created_of(snapshot.obj), ask.upper if newer else ask.lower
            if edge is not None and (stamp > edge if newer else stamp < edge):
                break  # sorted by created: everything beyond is outside the window
            if ask.matches(index, kind, snapshot, access):
                page.append(snapshot)
                if len(page) > ask.limit:
                    break
        return page


# ---- the public fake -----------------------------------------------------------------------


class FakeStripeApi(FakeService[_App]):
    """An in-process fake of the Stripe API (reads), served from a daemon thread.

    Its ``url`` (``http://127.0.0.1:<port>``, no ``/v1``) is the value for ``STRIPE_API_URL``.
    ``clock`` (Unix seconds) is what "the last 30 days" of events count from;
    ``rate_limit_per_second`` (None: none) answers 429 ``rate_limit`` past that many requests
    in any second, per account and mode (Stripe's own: 100 a second live, 25 in test mode).
    """

    description = "the fake Stripe API"

    def __init__(
        self,
        api_keys: Iterable[str] = (DEMO_API_KEY,),
        host: str = "127.0.0.1",
        port: int = 0,
        pinned_version: str = PINNED_VERSION,
        *,
        clock: Callable[[], float] = time.time,
        rate_limit_per_second: int | None = None,
    ) -> None:
        super().__init__(_App(api_keys, pinned_version, clock, rate_limit_per_second), host, port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``STRIPE_API_URL`` (paths add ``/v1``)."""
        return self.root_url

    @property
    def admin_url(self) -> str:
        return self.root_url + self._app.admin_prefix

    @property
    def pinned_version(self) -> str:
        return self._app.pinned_version

    def load_event(
        self, event: Mapping[str, Any], extra_objects: Iterable[Mapping[str, Any]] = ()
    ) -> int:
        """Make the objects an event carries visible, and a step's ``stripe_objects`` (served
        only until an event carries their id). Returns how many objects were loaded."""
        with self._app.lock:
            return self._app.store.load_event(event, list(extra_objects))

    def put_objects(
        self,
        objects: Iterable[Mapping[str, Any]],
        api_version: str | None = None,
        created: int | None = None,
    ) -> int:
        """Load objects directly: with ``created``, as snapshots of that time (as if an event
        of that time carried them); without, like a step's ``stripe_objects``."""
        with self._app.lock:
            return self._app.put_objects(objects, api_version, created)

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Keep events for ``GET /v1/events`` as given, without loading their objects. An event
        needs ``id``, ``type`` and ``created``; ``livemode`` and ``account`` say who sees it."""
        with self._app.lock:
            held = list(events)
            for event in held:
                self._app.store.record_event(event)
            return len(held)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    parser = cli_parser("stripe_api", "Local stand-in for the Stripe API, reads only.", 4030)
    parser.add_argument(
        "--key", action="append", dest="keys", help=f"an API key (default: {DEMO_API_KEY})"
    )
    args = parser.parse_args(argv)
    fake = FakeStripeApi(api_keys=args.keys or [DEMO_API_KEY], host=args.host, port=args.port)
    return serve_until_signalled(fake, "Fake Stripe API", f"pinned version {fake.pinned_version}")


if __name__ == "__main__":
    raise SystemExit(main())
