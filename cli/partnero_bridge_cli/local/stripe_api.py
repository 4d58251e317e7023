"""Local stand-in for the Stripe REST API (reads only), for the tests and the local stack.

The bridge decides Stripe commissions from a payment's current state, read from the Stripe API
with a restricted read-only key and a pinned ``Stripe-Version``. Real Stripe cannot be reached
from CI, and localstripe ignores ``Stripe-Version`` and lacks checkout sessions, disputes,
invoice payments and refund statuses (see the reference notes), so the bridge is pointed at this
fake instead (``STRIPE_API_URL=<fake.url>``, ``STRIPE_API_KEY=<one of its keys>``). It serves
objects loaded from Stripe events (as a field case or ``partnero-bridge send`` carries them),
following Stripe's documented behaviour as far as a state-reading bridge relies on it.

API (``/v1``), each answer JSON in Stripe's shapes, with ``Request-Id`` and ``Stripe-Version``:

* auth: ``Authorization: Bearer <key>`` (or Basic with the key as user name) naming a configured
  key (``sk_test_``/``rk_test_``/``sk_live_``/``rk_live_``...); otherwise 401
  ``{"error": {"type": "invalid_request_error", "message": ...}}``. A key sees only the objects
  of its mode (``livemode``); objects of a connected account (an event's top-level ``account``)
  only with ``Stripe-Account: acct_...``. Reads only: any other method is 405;
* ``Stripe-Version``: without it, objects are answered in the version they were loaded in (the
  account's default). With the pinned version (``2025-03-31.basil``) they are converted to its
  shape (below); any other version is refused with 400 naming it, so a drift is caught;
* retrieve: ``GET /v1/charges/{id}``, ``/v1/payment_intents/{id}``, ``/v1/invoices/{id}``,
  ``/v1/checkout/sessions/{id}``, ``/v1/subscriptions/{id}``, ``/v1/customers/{id}``,
  ``/v1/refunds/{id}``, ``/v1/disputes/{id}``, ``/v1/invoice_payments/{id}``; unknown id: 404
  ``resource_missing`` ("No such charge: 'ch_...'");
* ``expand[]=a.b`` (also ``expand[0]=``, as stripe-python sends it; ``data.`` on lists; at most
  4 levels) replaces an id by its object; ``expand[]=refunds`` on a charge and
  ``expand[]=payments`` on an invoice include those lists. A property that holds no id is 400;
* lists (docs.stripe.com/api/pagination), newest first (``created``, then the later loaded),
  ``{"object": "list", "data", "has_more", "url"}``, ``limit`` 1-100 (default 10),
  ``starting_after`` / ``ending_before`` cursors (an object of the list's type, matching the
  filters or not; unknown: 404), ``created`` / ``created[gt|gte|lt|lte]``; unknown parameters
  are 400 as on Stripe: ``GET /v1/payment_intents?customer=``, ``/v1/charges?payment_intent=|
  customer=``, ``/v1/invoices?subscription=|customer=|status=|collection_method=``,
  ``/v1/checkout/sessions?subscription=|payment_intent=|customer=|status=``,
  ``/v1/refunds?charge=|payment_intent=``, ``/v1/disputes?charge=|payment_intent=``,
  ``/v1/invoice_payments?invoice=``, ``/v1/customers?email=``; ``expand[]=data.customer``
  (any expandable property of the items) expands each item;
* events: ``GET /v1/events`` and ``/v1/events/{id}`` for the events of the last 30 days by the
  fake's clock (docs.stripe.com/api/events/list: "going back up to 30 days"), as they were
  created (never converted to the pinned version), filtered by ``type`` (``*`` a wildcard:
  ``charge.*``) or ``types[]`` (up to 20 exact names, not with ``type``). Every event loaded
  is kept; :meth:`FakeStripeApi.add_events` keeps events without loading their objects;
* optionally (``rate_limit_per_second``, off unless set) Stripe's rate limiter: past that many
  requests in any second per account and mode, ``429`` with ``{"error": {"type":
  "invalid_request_error", "code": "rate_limit", ...}}`` (docs.stripe.com/rate-limits,
  /error-codes).

Derived fields (Stripe's rules, computed on every read from the objects held then):

* a charge's refunds are the refunds naming it (``charge``). When any does, its
  ``amount_refunded`` is the sum of those whose current status is ``pending``,
  ``requires_action`` or ``succeeded`` (``failed`` and ``canceled`` give the money back) and
  ``refunded`` is ``amount_refunded >= amount``; when none does, the carried values stand. It is
  ``disputed`` when a dispute names it;
* a PaymentIntent's ``latest_charge`` is an id unless expanded; when it is carried as null while
  charges name the PaymentIntent, it is the newest of them;
* refunds listed by ``payment_intent`` include those naming a charge of that PaymentIntent;
* an invoice's payments (``/v1/invoice_payments``) are the ``invoice_payment`` objects loaded,
  plus, for an invoice loaded in a version before basil, one InvoicePayment per payment it names:
  ``{id, object: "invoice_payment", invoice, amount_paid, amount_requested, currency, status,
  is_default, livemode, created, payment: {type: "payment_intent"|"charge", payment_intent|
  charge}, status_transitions}`` (``status`` ``paid`` when the invoice is paid, else ``open``),
  and one of type ``out_of_band_payment`` when ``paid_out_of_band`` is true.

Conversions to ``2025-03-31.basil`` of objects loaded in an older version (others are served as
loaded):

* invoice: gains ``amount_paid`` when absent (``amount_due``, else ``total``, when ``paid``;
  else 0) and, when ``paid_out_of_band``, counts the out-of-band payment in it (``amount_due``);
  gains ``amount_remaining`` (``amount_due - amount_paid``, at least 0), ``total_excluding_tax``
  (``total - tax``; a null tax counts 0), ``status`` (``paid`` when ``paid`` is true, else
  ``uncollectible`` when ``forgiven``, else ``open``), ``created`` from ``date``,
  ``collection_method`` from ``billing``, ``auto_advance`` from ``closed``,
  ``application_fee_amount`` from ``application_fee``, ``total_taxes`` from
  ``total_tax_amounts``; ``parent`` becomes ``{"type": "subscription_details",
  "quote_details": null, "subscription_details": {"subscription", "metadata"}}`` from
  ``subscription`` and ``subscription_details.metadata`` (null without a subscription); it
  loses ``charge``, ``payment_intent``, ``subscription``, ``subscription_details``, ``paid``,
  ``paid_out_of_band``, ``tax``, ``total_tax_amounts``, ``tax_percent``, ``date``, ``billing``,
  ``closed``, ``forgiven``, ``application_fee``; ``payments`` only when expanded;
* charge: before 2022-11-15 loses its embedded ``refunds`` list (the refunds in it are refund
  objects of their own); before basil loses ``invoice``;
* payment intent: before 2022-11-15 loses its embedded ``charges`` list (its charges are charge
  objects; ``latest_charge`` is the first of them when absent); before basil loses ``invoice``;
* customer: ``account_balance`` becomes ``balance``; the embedded ``sources``,
  ``subscriptions`` and ``tax_ids`` lists are dropped (not included by default since
  2020-08-27).

Replay semantics (the field cases' rules): :meth:`FakeStripeApi.load_event` makes every object
the event carries visible (``data.object`` and every object nested in it that has an ``id`` and
an ``object`` type, each by its own id; not ``previous_attributes``). For each id the newest
carried snapshot wins, newest by the event's ``created`` (on a tie, the later load); objects
given as ``extra_objects`` (a step's ``stripe_objects``) are served only until some event
carries that id. An object without ``livemode`` takes the event's.

Admin interface under ``/_stripe`` (no auth, not recorded):

* ``POST /_stripe/events`` ``{"event": {...}, "stripe_objects": [...]}``: :meth:`load_event`;
* ``PUT /_stripe/objects`` ``{"objects": [...], "api_version": ..., "created": ...}`` (or a bare
  list): :meth:`put_objects`; ``DELETE /_stripe/objects``: forget every object and event;
* ``PUT /_stripe/events`` ``{"events": [...]}`` (or a bare list): :meth:`add_events`;
* ``GET|PUT /_stripe/settings`` ``{"rate_limit_per_second": <requests> | null}``;
* ``GET /_stripe/objects/{id}``: what is held for an id, as loaded;
* ``GET /_stripe/state``: keys (masked), pinned version, objects held, request count;
* ``GET /_stripe/requests`` (``DELETE`` forgets them); ``POST /_stripe/reset``: objects and
  requests.

Run it in the foreground with::

    python -m partnero_bridge_cli.local.stripe_api --port 4030 --key rk_test_local_demo
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from partnero_bridge_cli.local.fakeserver import dumps, loads
from partnero_bridge_cli.local.throttle import SlidingWindowLimit

__all__ = [
    "ADMIN_PREFIX",
    "DEMO_API_KEY",
    "PINNED_VERSION",
    "FakeStripeApi",
    "StripeRequest",
    "main",
]

PINNED_VERSION: Final = "2025-03-31.basil"
DEMO_API_KEY: Final = "rk_test_local_demo"
ADMIN_PREFIX: Final = "/_stripe"

_REFUNDS_SPLIT: Final = "2022-11-15"
_MAX_EXPAND_DEPTH: Final = 4
_DEFAULT_LIMIT: Final = 10
_MAX_LIMIT: Final = 100
_COUNTING_REFUNDS: Final = frozenset({"pending", "requires_action", "succeeded"})

# Retrieve routes: path segment -> object type.
_RESOURCES: Final[Mapping[str, str]] = {
    "charges": "charge",
    "payment_intents": "payment_intent",
    "invoices": "invoice",
    "checkout/sessions": "checkout.session",
    "subscriptions": "subscription",
    "customers": "customer",
    "refunds": "refund",
    "disputes": "dispute",
    "invoice_payments": "invoice_payment",
    "events": "event",
}
# List routes: path segment -> the filters Stripe documents for it (that the fake serves),
# each an equality on a property naming an id or a status (docs.stripe.com/api, "List all
# ..." of each resource). Every list also takes ``created`` and the pagination parameters.
_LIST_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    "payment_intents": ("customer",),
    "charges": ("payment_intent", "customer"),
    "invoices": ("subscription", "customer", "status", "collection_method"),
    "checkout/sessions": ("subscription", "payment_intent", "customer", "status"),
    "refunds": ("charge", "payment_intent"),
    "disputes": ("charge", "payment_intent"),
    # payment[...]: the invoice payments made by one PaymentIntent.
    "invoice_payments": ("invoice", "payment[type]", "payment[payment_intent]"),
    "customers": ("email",),
    # ``type`` (``*`` a wildcard) and ``types[]`` are read apart (docs.stripe.com/api/events/list).
    "events": (),
}
_LIST_PARAMETERS: Final = frozenset({"limit", "starting_after", "ending_before", "created"})
# Events are kept, listed and retrieved for 30 days (docs.stripe.com/api/events/list: "List
# events, going back up to 30 days"; /api/events/retrieve: "if it was created in the last 30
# days").
EVENT_RETENTION_SECONDS: Final = 30 * 24 * 3600
_MAX_EVENT_TYPES: Final = 20
# Id prefix -> object type, to resolve an id being expanded.
_ID_PREFIXES: Final[Mapping[str, str]] = {
    "ch_": "charge",
    "py_": "charge",
    "pi_": "payment_intent",
    "in_": "invoice",
    "cs_": "checkout.session",
    "sub_": "subscription",
    "cus_": "customer",
    "re_": "refund",
    "pyr_": "refund",
    "dp_": "dispute",
    "du_": "dispute",
    "inpay_": "invoice_payment",
    "evt_": "event",
}
# Properties Stripe answers as an id unless expanded.
_EXPANDABLE: Final = frozenset(
    {
        "charge",
        "customer",
        "dispute",
        "invoice",
        "latest_charge",
        "latest_invoice",
        "payment_intent",
        "refund",
        "subscription",
    }
)
_NOT_INDEXED: Final = frozenset({"list", "event", "line_item", "search_result"})
_INVOICE_REMOVED: Final = (
    "charge",
    "payment_intent",
    "subscription",
    "subscription_details",
    "paid",
    "paid_out_of_band",
    "tax",
    "total_tax_amounts",
    "tax_percent",
    "date",
    "billing",
    "closed",
    "forgiven",
    "application_fee",
)


def _date(version: str | None) -> str:
    """The date part of an API version (``2025-03-31.basil`` -> ``2025-03-31``)."""
    return (version or PINNED_VERSION)[:10]


def _key_mode(key: str) -> bool:
    """True for a live-mode key (``sk_live_...``, ``rk_live_...``)."""
    return "_live_" in key


def _mask(key: str) -> str:
    return f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class StripeError(Exception):
    """An error answered in Stripe's shape: ``{"error": {"type", "message", ...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind

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


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    """One object as loaded, with what decides whether a later one replaces it."""

    obj: dict[str, Any]
    kind: str
    version: str | None
    carried: bool
    """True when an event carried it; False for a ``stripe_objects`` entry."""
    created: int
    """The carrying event's ``created`` (0 for an extra object)."""
    seq: int
    """Load order of the first snapshot of this id: the tie-break among equal ``created``."""
    livemode: bool
    account: str | None
    event: str | None

    @property
    def object_id(self) -> str:
        return str(self.obj["id"])

    @property
    def sort_key(self) -> tuple[int, int]:
        """Lists are newest first: by the object's ``created``, then the later loaded."""
        return _created_of(self.obj), self.seq

    def visible_to(self, access: _Access) -> bool:
        return self.livemode == access.livemode and self.account == access.account

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.object_id,
            "object": self.kind,
            "livemode": self.livemode,
            "account": self.account,
            "api_version": self.version,
            "source": "event" if self.carried else "stripe_objects",
            "event": self.event,
            "snapshot_created": self.created if self.carried else None,
        }


def _created_of(obj: Mapping[str, Any]) -> int:
    """An object's ``created`` (Unix seconds); an invoice older than 2019 has ``date``."""
    created = obj.get("created")
    if created is None and obj.get("object") == "invoice":
        created = obj.get("date")
    return _integer(created)


@dataclass(frozen=True)
class StripeRequest:
    """One request to ``/v1``, as the fake received it (the key masked)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    stripe_version: str | None
    key: str | None
    account: str | None
    status: int

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "stripe_version": self.stripe_version,
            "key": self.key,
            "account": self.account,
            "status": self.status,
        }


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
class _Access:
    """Who is reading: the key's mode, the connected account and the answer's version."""

    livemode: bool
    account: str | None
    version: str | None


def _json_copy(value: Any) -> Any:
    """A private copy of JSON data, non-integer numbers as exact ``Decimal``.

    The C encoder first (Stripe objects hold integers and strings: seeding thousands must
    be quick), the exact writer when a ``Decimal`` is already inside.
    """
    try:
        return json.loads(json.dumps(value, allow_nan=False), parse_float=Decimal)
    except TypeError:
        return loads(dumps(value))


def _id_of(value: Any) -> str | None:
    """The id a property holds: itself when a string, an expanded object's ``id``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _invoice_status(obj: Mapping[str, Any]) -> str:
    """An invoice's ``status``, as the conversion to the pinned version derives it."""
    status = obj.get("status")
    if isinstance(status, str):
        return status
    if obj.get("paid"):
        return "paid"
    return "uncollectible" if obj.get("forgiven") else "open"


@dataclass
class _Ordered:
    """Snapshots newest first, each with its position in its type's whole list (cursors)."""

    items: list[_Snapshot] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def add(self, snapshot: _Snapshot, position: int) -> None:
        self.items.append(snapshot)
        self.positions.append(position)


class _Index:
    """Lookups derived from what the store holds, built on the first read after a change.

    Lists are read often and written rarely (a seeded history of thousands of payments is
    paged at 100 and read payment by payment), so every list, cursor and derived field is a
    dictionary lookup here rather than a scan of every object held.
    """

    def __init__(self, store: _Store) -> None:
        self.store = store
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
            if key in self.snapshots:
                continue  # two derived payments with one id: the newer stands
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
        if kind == "invoice" and param == "subscription":
            parent = obj.get("parent")
            details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
            nested = details.get("subscription") if isinstance(details, Mapping) else None
            found = {_id_of(obj.get("subscription")), _id_of(nested)}
        elif kind == "invoice" and param == "status":
            found = {_invoice_status(obj)}
        elif param.startswith("payment["):
            payment = obj.get("payment")
            inner = param[len("payment[") : -1]
            found = {_id_of(payment.get(inner)) if isinstance(payment, Mapping) else None}
        elif kind == "refund" and param == "payment_intent":
            # A refund made on a charge still belongs to that charge's PaymentIntent.
            charge = self.snapshots.get(("charge", _id_of(obj.get("charge")) or ""))
            of_charge = _id_of(charge.obj.get("payment_intent")) if charge else None
            found = {_id_of(obj.get("payment_intent")), of_charge}
        else:
            found = {_id_of(obj.get(param))}
        return {value for value in found if value}

    def related(self, kind: str, param: str, value: str, access: _Access) -> list[_Snapshot]:
        """The visible snapshots of ``kind`` naming ``value`` in ``param``, newest first."""
        return [s for s in self.with_value(kind, param, value).items if s.visible_to(access)]


@dataclass
class _Store:
    """The objects held, by type and id, and the events; every read is derived from them."""

    objects: dict[tuple[str, str], _Snapshot] = field(default_factory=dict)
    events: dict[str, _Snapshot] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _index: _Index | None = None

    def index(self) -> _Index:
        if self._index is None:
            self._index = _Index(self)
        return self._index

    # ---- loading ---------------------------------------------------------------------------

    def load_event(self, event: Mapping[str, Any], extra: Iterable[Mapping[str, Any]]) -> int:
        if not isinstance(event, Mapping):
            raise ValueError("an event must be a JSON object")
        data = event.get("data")
        carried = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(carried, Mapping):
            raise ValueError("an event needs data.object")
        created = event.get("created")
        if isinstance(created, bool) or not isinstance(created, int):
            raise ValueError("an event needs an integer created time")
        version = event.get("api_version") if isinstance(event.get("api_version"), str) else None
        livemode = bool(event.get("livemode", False))
        account = event.get("account") if isinstance(event.get("account"), str) else None
        event_id = str(event.get("id")) if event.get("id") is not None else None
        count = 0
        for obj in _nested_objects(_json_copy(carried)):
            self._put(obj, version, True, created, livemode, account, event_id)
            count += 1
        count += self.put_extra(extra, version, livemode, account, event_id)
        if isinstance(event.get("id"), str) and isinstance(event.get("type"), str):
            self.record_event(event)  # listed by /v1/events too, as Stripe keeps it
        return count

    def record_event(self, event: Mapping[str, Any]) -> None:
        """Keep an event for ``/v1/events`` as given (its objects are not loaded)."""
        if not isinstance(event, Mapping):
            raise ValueError("an event must be a JSON object")
        body = _json_copy(event)
        event_id, created = body.get("id"), body.get("created")
        if not isinstance(event_id, str) or not event_id:
            raise ValueError('an event needs a string "id"')
        if isinstance(created, bool) or not isinstance(created, int):
            raise ValueError("an event needs an integer created time")
        if not isinstance(body.get("type"), str):
            raise ValueError('an event needs a string "type"')
        body.setdefault("object", "event")
        held = self.events.get(event_id)
        self.events[event_id] = _Snapshot(
            obj=body,
            kind="event",
            version=body.get("api_version") if isinstance(body.get("api_version"), str) else None,
            carried=True,
            created=created,
            seq=held.seq if held is not None else next(self.seq),
            livemode=bool(body.get("livemode", False)),
            account=body.get("account") if isinstance(body.get("account"), str) else None,
            event=event_id,
        )
        self._index = None

    def put_extra(
        self,
        objects: Iterable[Mapping[str, Any]],
        version: str | None,
        livemode: bool,
        account: str | None,
        event_id: str | None,
    ) -> int:
        count = 0
        for given in objects:
            obj = self._checked(given)
            self._put(obj, version, False, 0, livemode, account, event_id)
            count += 1
        return count

    def put_carried(
        self, objects: Iterable[Mapping[str, Any]], version: str | None, created: int
    ) -> int:
        count = 0
        for given in objects:
            obj = self._checked(given)
            livemode = bool(obj.get("livemode", False))
            self._put(obj, version, True, created, livemode, None, None)
            count += 1
        return count

    @staticmethod
    def _checked(given: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(given, Mapping):
            raise ValueError("a Stripe object must be a JSON object")
        obj = _json_copy(given)
        if not isinstance(obj.get("id"), str) or not isinstance(obj.get("object"), str):
            raise ValueError('a Stripe object needs a string "id" and "object"')
        return dict(obj)

    def _put(
        self,
        obj: dict[str, Any],
        version: str | None,
        carried: bool,
        created: int,
        livemode: bool,
        account: str | None,
        event_id: str | None,
    ) -> None:
        kind = str(obj["object"])
        key = (kind, str(obj["id"]))
        held = self.objects.get(key)
        if held is not None:
            if held.carried and not carried:
                return  # an extra object is served only until an event carries that id
            if held.carried and carried and created < held.created:
                return  # an older snapshot than the one held
        self.objects[key] = _Snapshot(
            obj=obj,
            kind=kind,
            version=version,
            carried=carried,
            created=created,
            seq=held.seq if held is not None else next(self.seq),
            livemode=bool(obj.get("livemode", livemode)),
            account=account,
            event=event_id,
        )
        self._index = None

    # ---- finding ---------------------------------------------------------------------------

    def of_kind(self, kind: str, access: _Access) -> list[_Snapshot]:
        """The visible snapshots of a type, newest first."""
        return [s for s in self.index().ordered(kind).items if s.visible_to(access)]

    def get(self, kind: str, object_id: str, access: _Access) -> _Snapshot | None:
        snapshot = self.index().snapshots.get((kind, object_id))
        if snapshot is None or not snapshot.visible_to(access):
            return None
        return snapshot

    def find(self, object_id: str, access: _Access) -> _Snapshot | None:
        """An object by id alone (for ``expand``): by its prefix, else any served type."""
        for prefix, kind in _ID_PREFIXES.items():
            if object_id.startswith(prefix):
                return self.get(kind, object_id, access)
        for kind in _RESOURCES.values():
            found = self.get(kind, object_id, access)
            if found is not None:
                return found
        return None

    def refunds_of_charge(self, charge_id: str, access: _Access) -> list[_Snapshot]:
        return self.index().related("refund", "charge", charge_id, access)

    # ---- reading: derived fields and versions ----------------------------------------------

    def render(self, snapshot: _Snapshot, access: _Access) -> dict[str, Any]:
        """The object as Stripe would answer it now (not expanded)."""
        obj = copy.deepcopy(snapshot.obj)
        if snapshot.kind == "event":
            return obj  # an event is answered in the version it was created in
        pinned = access.version is not None
        older = _date(snapshot.version) < _date(access.version)
        if pinned and older:
            convert = _CONVERSIONS.get(snapshot.kind)
            if convert is not None:
                convert(obj, snapshot.version)
        derive = getattr(self, f"_derive_{snapshot.kind.replace('.', '_')}", None)
        if derive is not None:
            derive(obj, access)
        for name in _EXPANDABLE:
            value = obj.get(name)
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                obj[name] = value["id"]
        return obj

    def _derive_charge(self, obj: dict[str, Any], access: _Access) -> None:
        refunds = self.refunds_of_charge(str(obj["id"]), access)
        if refunds:
            refunded = sum(
                _integer(r.obj.get("amount"))
                for r in refunds
                if r.obj.get("status") in _COUNTING_REFUNDS
            )
            obj["amount_refunded"] = refunded
            obj["refunded"] = refunded >= _integer(obj.get("amount")) and refunded > 0
            if isinstance(obj.get("refunds"), dict):
                obj["refunds"] = self.list_body(
                    [self.render(r, access) for r in refunds],
                    f"/v1/charges/{obj['id']}/refunds",
                    has_more=False,
                )
        if self.index().related("dispute", "charge", str(obj["id"]), access):
            obj["disputed"] = True

    def _derive_payment_intent(self, obj: dict[str, Any], access: _Access) -> None:
        if obj.get("latest_charge") is None:
            charges = self.index().related("charge", "payment_intent", str(obj["id"]), access)
            if charges:
                obj["latest_charge"] = charges[0].object_id

    def _derive_invoice(self, obj: dict[str, Any], access: _Access) -> None:
        if access.version is not None:
            obj.pop("payments", None)  # included only when expanded

    @staticmethod
    def _newest_first(snapshots: Iterable[_Snapshot]) -> list[_Snapshot]:
        return sorted(snapshots, key=lambda s: s.sort_key, reverse=True)

    # ---- invoice payments ------------------------------------------------------------------

    def derived_invoice_payments(self) -> list[_Snapshot]:
        """One InvoicePayment per payment a pre-basil invoice names, unless one was loaded."""
        named = {
            _payment_target(s.obj)
            for (kind, _), s in self.objects.items()
            if kind == "invoice_payment"
        }
        derived: list[_Snapshot] = []
        for (kind, _), invoice in self.objects.items():
            if kind != "invoice" or _date(invoice.version) >= _date(PINNED_VERSION):
                continue
            for payment in _payments_of_legacy_invoice(invoice.obj):
                if _payment_target(payment) in named:
                    continue
                derived.append(
                    _Snapshot(
                        obj=payment,
                        kind="invoice_payment",
                        version=PINNED_VERSION,
                        carried=invoice.carried,
                        created=invoice.created,
                        seq=invoice.seq,
                        livemode=invoice.livemode,
                        account=invoice.account,
                        event=invoice.event,
                    )
                )
        return derived

    def invoice_payments(self, access: _Access) -> list[_Snapshot]:
        """Loaded ``invoice_payment`` objects plus those derived from pre-basil invoices."""
        return self.of_kind("invoice_payment", access)

    def invoice_payment(self, object_id: str, access: _Access) -> _Snapshot | None:
        return self.get("invoice_payment", object_id, access)

    # ---- lists -----------------------------------------------------------------------------

    @staticmethod
    def list_body(data: list[dict[str, Any]], url: str, has_more: bool) -> dict[str, Any]:
        return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _payment_target(payment: Mapping[str, Any]) -> tuple[Any, ...]:
    inner = payment.get("payment")
    inner = inner if isinstance(inner, Mapping) else {}
    kind = inner.get("type")
    return (payment.get("invoice"), kind, inner.get(kind) if isinstance(kind, str) else None)


def _legacy_amount_paid(invoice: Mapping[str, Any]) -> int:
    """``amount_paid`` of a pre-basil invoice, leaving out-of-band money out (as it did)."""
    if "amount_paid" in invoice:
        return _integer(invoice.get("amount_paid"))
    if invoice.get("paid") and not invoice.get("paid_out_of_band"):
        due = invoice.get("amount_due", invoice.get("total"))
        return _integer(due)
    return 0


def _amount_due(invoice: Mapping[str, Any]) -> int:
    return _integer(invoice.get("amount_due", invoice.get("total")))


def _payments_of_legacy_invoice(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    invoice_id = str(invoice["id"])
    suffix = invoice_id.removeprefix("in_")
    paid = bool(invoice.get("paid")) or invoice.get("status") == "paid"
    created = _integer(invoice.get("created", invoice.get("date")))
    transitions = invoice.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, Mapping) else None
    if paid and paid_at is None:
        paid_at = created
    currency = invoice.get("currency")
    livemode = bool(invoice.get("livemode", False))

    def payment(kind: str, target: str | None, amount: int, default: bool) -> dict[str, Any]:
        inner: dict[str, Any] = {"type": kind}
        if target is not None:
            inner[kind] = target
        tail = "" if default else f"_{kind}"
        return {
            "id": f"inpay_{suffix}{tail}",
            "object": "invoice_payment",
            "amount_paid": amount if paid else None,
            "amount_requested": amount,
            "created": created,
            "currency": currency,
            "invoice": invoice_id,
            "is_default": default,
            "livemode": livemode,
            "payment": inner,
            "status": "paid" if paid else "open",
            "status_transitions": {"canceled_at": None, "paid_at": paid_at if paid else None},
        }

    found: list[dict[str, Any]] = []
    intent, charge = invoice.get("payment_intent"), invoice.get("charge")
    intent = intent.get("id") if isinstance(intent, Mapping) else intent
    charge = charge.get("id") if isinstance(charge, Mapping) else charge
    on_stripe = _legacy_amount_paid(invoice)
    if isinstance(intent, str):
        found.append(payment("payment_intent", intent, on_stripe or _amount_due(invoice), True))
    elif isinstance(charge, str):
        found.append(payment("charge", charge, on_stripe or _amount_due(invoice), True))
    if invoice.get("paid_out_of_band"):
        outside = max(_amount_due(invoice) - on_stripe, 0)
        found.append(payment("out_of_band_payment", None, outside, not found))
    return found


# --------------------------------------------------------------------------------------------
# Conversions to the pinned version
# --------------------------------------------------------------------------------------------


def _convert_invoice(obj: dict[str, Any], version: str | None) -> None:
    amount_paid = _legacy_amount_paid(obj)
    if obj.get("paid_out_of_band"):
        amount_paid = max(amount_paid, _amount_due(obj))
    obj["amount_paid"] = amount_paid
    if "amount_remaining" not in obj:
        obj["amount_remaining"] = max(_amount_due(obj) - amount_paid, 0)
    elif obj.get("paid_out_of_band"):
        obj["amount_remaining"] = 0
    if "total_excluding_tax" not in obj and "total" in obj:
        obj["total_excluding_tax"] = _integer(obj.get("total")) - _integer(obj.get("tax"))
    if "status" not in obj:
        if obj.get("paid"):
            obj["status"] = "paid"
        elif obj.get("forgiven"):
            obj["status"] = "uncollectible"
        else:
            obj["status"] = "open"
    renames = {
        "date": "created",
        "billing": "collection_method",
        "application_fee": "application_fee_amount",
    }
    for old, new in renames.items():
        if old in obj and new not in obj:
            obj[new] = obj[old]
    if "closed" in obj and "auto_advance" not in obj:
        obj["auto_advance"] = not obj["closed"]
    if "total_taxes" not in obj:
        amounts = obj.get("total_tax_amounts")
        obj["total_taxes"] = [
            {
                "amount": item.get("amount"),
                "tax_behavior": "inclusive" if item.get("inclusive") else "exclusive",
                "tax_rate_details": {"tax_rate": item.get("tax_rate")},
                "taxability_reason": item.get("taxability_reason"),
                "taxable_amount": item.get("taxable_amount"),
                "type": "tax_rate_details",
            }
            for item in (amounts if isinstance(amounts, list) else [])
            if isinstance(item, Mapping)
        ]
    subscription = obj.get("subscription")
    if isinstance(subscription, Mapping):
        subscription = subscription.get("id")
    if "parent" not in obj or obj.get("parent") is None:
        if isinstance(subscription, str):
            details = obj.get("subscription_details")
            metadata = details.get("metadata") if isinstance(details, Mapping) else None
            obj["parent"] = {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": metadata, "subscription": subscription},
            }
        else:
            obj["parent"] = None
    for name in _INVOICE_REMOVED:
        obj.pop(name, None)


def _convert_charge(obj: dict[str, Any], version: str | None) -> None:
    if _date(version) < _REFUNDS_SPLIT:
        obj.pop("refunds", None)
    obj.pop("invoice", None)


def _convert_payment_intent(obj: dict[str, Any], version: str | None) -> None:
    if _date(version) < _REFUNDS_SPLIT:
        charges = obj.pop("charges", None)
        data = charges.get("data") if isinstance(charges, Mapping) else None
        if "latest_charge" not in obj:
            first = data[0] if isinstance(data, list) and data else None
            obj["latest_charge"] = first.get("id") if isinstance(first, Mapping) else None
    obj.pop("invoice", None)


def _convert_customer(obj: dict[str, Any], version: str | None) -> None:
    if "account_balance" in obj:
        balance = obj.pop("account_balance")
        obj.setdefault("balance", balance)
    for name in ("sources", "subscriptions", "tax_ids"):
        obj.pop(name, None)


_CONVERSIONS: Final[Mapping[str, Callable[[dict[str, Any], str | None], None]]] = {
    "invoice": _convert_invoice,
    "charge": _convert_charge,
    "payment_intent": _convert_payment_intent,
    "customer": _convert_customer,
}


# --------------------------------------------------------------------------------------------
# The WSGI application
# --------------------------------------------------------------------------------------------

_API_RULES: Final = Map(
    [
        Rule("/v1/checkout/sessions", endpoint=("list", "checkout/sessions")),
        Rule("/v1/checkout/sessions/<object_id>", endpoint=("get", "checkout/sessions")),
        *(
            Rule(f"/v1/{name}", endpoint=("list", name))
            for name in _LIST_FILTERS
            if name != "checkout/sessions"
        ),
        *(
            Rule(f"/v1/{name}/<object_id>", endpoint=("get", name))
            for name in _RESOURCES
            if name != "checkout/sessions"
        ),
    ],
    strict_slashes=False,
)


class _App:
    """All state of the fake, guarded by one lock, and the WSGI application serving it."""

    def __init__(
        self,
        api_keys: Iterable[str],
        pinned_version: str,
        clock: Callable[[], float] = time.time,
        rate_limit_per_second: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.store = _Store()
        self.keys: set[str] = set()
        self.pinned_version = pinned_version
        self.recorded: list[StripeRequest] = []
        self.clock = clock
        self.limit: SlidingWindowLimit | None = None
        for key in api_keys:
            self.add_key(key)
        self.set_rate_limit(rate_limit_per_second)

    def set_rate_limit(self, per_second: int | None) -> None:
        """Answer 429 past ``per_second`` requests in any second (None: no limit)."""
        with self.lock:
            self.limit = None if per_second is None else SlidingWindowLimit(per_second, 1.0)

    def now(self) -> int:
        """The fake's time, Unix seconds (what "the last 30 days" of events counts from)."""
        return int(self.clock())

    def add_key(self, key: str) -> None:
        if not isinstance(key, str) or not key or any(ch.isspace() for ch in key):
            raise ValueError("a Stripe API key must be a non-empty string without spaces")
        with self.lock:
            self.keys.add(key)

    def reset_objects(self) -> None:
        with self.lock:
            self.store = _Store()

    # ---- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            response = self.admin(request)
        else:
            response = self.api(request)
        return response(environ, start_response)

    # ---- API -------------------------------------------------------------------------------

    def api(self, request: Request) -> Response:
        key = self.presented_key(request)
        version = request.headers.get("Stripe-Version", "").strip() or None
        account = request.headers.get("Stripe-Account") or None
        try:
            self.throttle(key, account)
            with self.lock:
                body = self.answer(request, key, version, account)
            status = 200
        except StripeError as error:
            body, status = error.body(), error.status
        with self.lock:
            self.recorded.append(
                StripeRequest(
                    method=request.method,
                    path=request.path,
                    query=list(request.args.items(multi=True)),
                    stripe_version=version,
                    key=None if key is None else _mask(key),
                    account=account,
                    status=status,
                )
            )
        headers = {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}
        if version == self.pinned_version:
            headers["Stripe-Version"] = version
        return Response(
            dumps(body), status=status, headers=headers, content_type="application/json"
        )

    def throttle(self, key: str | None, account: str | None) -> None:
        """Stripe's rate limiter, when one is set: per account and mode, a 429 past it.

        docs.stripe.com/rate-limits: requests over the limit are answered ``429``; the error
        code is ``rate_limit`` (docs.stripe.com/error-codes: "Too many requests hit the API
        too quickly"), of type ``invalid_request_error`` as the SDKs read it.
        """
        limit = self.limit
        if limit is None:
            return
        mode = "live" if key is not None and _key_mode(key) else "test"
        if limit.admit(f"{account or ''}:{mode}") is not None:
            raise StripeError(
                429,
                "Request rate limit exceeded. You can learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            )

    @staticmethod
    def presented_key(request: Request) -> str | None:
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return credentials
        if scheme.lower() == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except ValueError:
                return None
            return decoded.partition(":")[0] or None
        return None

    def answer(
        self, request: Request, key: str | None, version: str | None, account: str | None
    ) -> dict[str, Any]:
        if key is None:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if key not in self.keys:
            raise StripeError(401, f"Invalid API Key provided: {_mask(key)}")
        if version is not None and version != self.pinned_version:
            raise StripeError(
                400,
                f"Stripe-Version {version} is not served by this fake Stripe API: it answers "
                f"only the pinned version {self.pinned_version} (or, without the header, each "
                "object in the version it was loaded in)",
                param="Stripe-Version",
            )
        adapter = _API_RULES.bind("localhost")
        try:
            (action, name), args = adapter.match(request.path, method="GET")
        except HTTPException:
            raise StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            ) from None
        if request.method not in ("GET", "HEAD"):
            raise StripeError(
                405,
                f"This fake Stripe API serves reads only; {request.method} {request.path} is "
                "not supported",
            )
        access = _Access(livemode=_key_mode(key), account=account, version=version)
        query = list(request.args.items(multi=True))
        if action == "get":
            return self.retrieve(name, str(args["object_id"]), query, access)
        return self.list_objects(name, query, access)

    # ---- retrieve --------------------------------------------------------------------------

    def retrieve(
        self, name: str, object_id: str, query: list[tuple[str, str]], access: _Access
    ) -> dict[str, Any]:
        expand = _expansions(query, allowed=set())
        kind = _RESOURCES[name]
        snapshot = self.store.get(kind, object_id, access)
        if snapshot is not None and kind == "event" and not self.event_kept(snapshot):
            raise _missing(kind, object_id)
        if snapshot is None:
            other = _Access(not access.livemode, access.account, access.version)
            found_elsewhere = self.store.get(kind, object_id, other)
            error = _missing(kind, object_id)
            if found_elsewhere is not None:
                mode, key_mode = ("live", "test") if found_elsewhere.livemode else ("test", "live")
                error.message += (
                    f"; a similar object exists in {mode} mode, but a {key_mode} mode key was "
                    "used to make this request."
                )
            raise error
        obj = self.store.render(snapshot, access)
        for path in expand:
            obj = self.expand(obj, path.split("."), access, path)
        return obj

    def expand(
        self, obj: dict[str, Any], path: list[str], access: _Access, whole: str
    ) -> dict[str, Any]:
        name, rest = path[0], path[1:]
        if obj.get("object") == "list" and name == "data":
            data = obj.get("data")
            if isinstance(data, list):
                obj["data"] = [
                    self.expand(item, rest, access, whole) if rest else item
                    for item in data
                    if isinstance(item, dict)
                ]
            return obj
        value = obj.get(name)
        if obj.get("object") == "charge" and name == "refunds" and not isinstance(value, dict):
            refunds = self.store.refunds_of_charge(str(obj["id"]), access)
            value = self.store.list_body(
                [self.store.render(r, access) for r in refunds],
                f"/v1/charges/{obj['id']}/refunds",
                has_more=False,
            )
        elif obj.get("object") == "invoice" and name == "payments" and not isinstance(value, dict):
            payments = self.store.index().related("invoice_payment", "invoice", obj["id"], access)
            value = self.store.list_body(
                [self.store.render(p, access) for p in payments],
                f"/v1/invoices/{obj['id']}/payments",
                has_more=False,
            )
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

    # ---- lists -----------------------------------------------------------------------------

    def list_objects(
        self, name: str, query: list[tuple[str, str]], access: _Access
    ) -> dict[str, Any]:
        """A list as Stripe pages it (docs.stripe.com/api/pagination).

        Newest first; ``limit`` 1-100 (default 10); ``starting_after`` / ``ending_before``
        name an object of the list's type (404 ``resource_missing`` otherwise; one of the
        two at most) and page from its place, whether or not it matches the filters;
        ``has_more`` says whether more objects lie beyond the page in that direction;
        ``created`` (Unix seconds, or ``created[gt|gte|lt|lte]``) bounds the objects' own
        ``created``. Events are listed for their last 30 days only.
        """
        kind = _RESOURCES[name]
        filters = _LIST_FILTERS[name]
        expand = _expansions(query, allowed=set())
        params: dict[str, str] = {}
        created: list[tuple[str, int]] = []
        types: list[str] = []
        for param, value in query:
            if param == "expand[]" or (param.startswith("expand[") and param.endswith("]")):
                continue
            if param == "created" or (param.startswith("created[") and param.endswith("]")):
                op = param[len("created[") : -1] if param != "created" else "eq"
                if op not in ("eq", "gt", "gte", "lt", "lte"):
                    raise StripeError(400, f"Received unknown parameter: {param}", param=param)
                created.append((op, _int_param(param, value)))
                continue
            if kind == "event" and (
                param == "types[]" or (param.startswith("types[") and param[6:-1].isdigit())
            ):
                types.append(value)
                continue
            if kind == "event" and param == "type":
                params[param] = value
                continue
            if param not in filters and param not in _LIST_PARAMETERS:
                raise StripeError(400, f"Received unknown parameter: {param}", param=param)
            params[param] = value
        limit = _int_param("limit", params.get("limit", str(_DEFAULT_LIMIT)))
        if not 1 <= limit <= _MAX_LIMIT:
            raise StripeError(
                400,
                f"Invalid limit: must be between 1 and {_MAX_LIMIT}",
                param="limit",
            )
        if "starting_after" in params and "ending_before" in params:
            raise StripeError(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        type_matches = self.event_types(params.get("type"), types) if kind == "event" else None
        index = self.store.index()
        chosen = [param for param in filters if param in params]
        if chosen:
            candidates = index.with_value(kind, chosen[0], params[chosen[0]])
        else:
            candidates = index.ordered(kind)
        lower = max(
            (bound + (op == "gt") for op, bound in created if op in ("gt", "gte", "eq")),
            default=None,
        )
        upper = min(
            (bound - (op == "lt") for op, bound in created if op in ("lt", "lte", "eq")),
            default=None,
        )
        if kind == "event":
            oldest = self.now() - EVENT_RETENTION_SECONDS
            lower = oldest if lower is None else max(lower, oldest)

        def matches(snapshot: _Snapshot) -> bool:
            if not snapshot.visible_to(access):
                return False
            for param in chosen[1:]:
                if params[param] not in index.values(kind, param, snapshot.obj):
                    return False
            if type_matches is not None and not type_matches(str(snapshot.obj.get("type"))):
                return False
            stamp = _created_of(snapshot.obj)
            return (lower is None or stamp >= lower) and (upper is None or stamp <= upper)

        def too_old(snapshot: _Snapshot) -> bool:
            return lower is not None and _created_of(snapshot.obj) < lower

        def too_new(snapshot: _Snapshot) -> bool:
            return upper is not None and _created_of(snapshot.obj) > upper

        items, positions = candidates.items, candidates.positions
        page: list[_Snapshot] = []
        if "ending_before" in params:
            # Walk towards newer objects from the cursor, then answer newest first.
            end = bisect.bisect_left(positions, self.cursor(kind, params, "ending_before", access))
            for snapshot in reversed(items[:end]):
                if too_new(snapshot):
                    break
                if matches(snapshot):
                    page.append(snapshot)
                    if len(page) > limit:
                        break
            has_more = len(page) > limit
            page = page[:limit][::-1]
        else:
            start = 0
            if "starting_after" in params:
                position = self.cursor(kind, params, "starting_after", access)
                start = bisect.bisect_right(positions, position)
            for snapshot in itertools.islice(items, start, None):
                if too_old(snapshot):
                    break
                if matches(snapshot):
                    page.append(snapshot)
                    if len(page) > limit:
                        break
            has_more = len(page) > limit
            page = page[:limit]
        body = self.store.list_body(
            [self.store.render(snapshot, access) for snapshot in page], f"/v1/{name}", has_more
        )
        for path in expand:
            body = self.expand(body, path.split("."), access, path)
        return body

    def cursor(self, kind: str, params: Mapping[str, str], param: str, access: _Access) -> int:
        """The place in its type's list of the object a cursor names (404 if none)."""
        object_id = params[param]
        snapshot = self.store.get(kind, object_id, access)
        if snapshot is None:
            raise _missing(kind, object_id, param=param)
        return self.store.index().position[(kind, object_id)]

    @staticmethod
    def event_types(pattern: str | None, types: list[str]) -> Callable[[str], bool] | None:
        """The ``type`` / ``types[]`` filter of the event list (docs.stripe.com/api/events/list:
        ``type`` "a specific event name, or group of events using * as a wildcard";
        ``types`` "an array of up to 20 strings containing specific event names"; "either
        type or types, but not both")."""
        if pattern is not None and types:
            raise StripeError(
                400, "You may only specify one of these parameters: type, types.", param="types"
            )
        if len(types) > _MAX_EVENT_TYPES:
            raise StripeError(
                400,
                f"Invalid array: types must have at most {_MAX_EVENT_TYPES} elements",
                param="types",
            )
        if types:
            wanted = frozenset(types)
            return lambda kind: kind in wanted
        if pattern is not None:
            compiled = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
            return lambda kind: compiled.fullmatch(kind) is not None
        return None

    def event_kept(self, snapshot: _Snapshot) -> bool:
        """Whether Stripe still serves this event (created in the last 30 days)."""
        return _created_of(snapshot.obj) >= self.now() - EVENT_RETENTION_SECONDS

    # ---- admin -----------------------------------------------------------------------------

    def admin(self, request: Request) -> Response:
        parts = [p for p in request.path[len(ADMIN_PREFIX) :].split("/") if p]
        try:
            body = self.admin_route(request.method, parts, request)
            status = 200
        except (ValueError, TypeError) as error:
            body, status = {"error": {"type": "invalid_request_error", "message": str(error)}}, 400
        except KeyError as error:
            message = error.args[0] if error.args else "not found"
            body, status = {"error": {"type": "invalid_request_error", "message": message}}, 404
        return Response(dumps(body), status=status, content_type="application/json")

    def admin_route(self, method: str, parts: list[str], request: Request) -> Any:
        route = (method, tuple(parts[:1]))
        with self.lock:
            if route == ("GET", ("state",)) and len(parts) == 1:
                return self.state()
            if route == ("POST", ("events",)) and len(parts) == 1:
                payload = _json_body(request)
                if not isinstance(payload, dict):
                    raise ValueError('expected {"event": {...}, "stripe_objects": [...]}')
                event = payload.get("event", payload if "data" in payload else None)
                extra = payload.get("stripe_objects") or []
                if not isinstance(event, dict):
                    raise ValueError("an event must be a JSON object")
                if not isinstance(extra, list):
                    raise ValueError("stripe_objects must be a list")
                return {"loaded": self.store.load_event(event, extra)}
            if route == ("PUT", ("events",)) and len(parts) == 1:
                payload = _json_body(request)
                if isinstance(payload, list):
                    payload = {"events": payload}
                if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
                    raise ValueError('expected {"events": [...]} or a list of events')
                for event in payload["events"]:
                    self.store.record_event(event)
                return {"recorded": len(payload["events"])}
            if route == ("PUT", ("settings",)) and len(parts) == 1:
                payload = _json_body(request)
                if not isinstance(payload, dict) or set(payload) - {"rate_limit_per_second"}:
                    raise ValueError('expected {"rate_limit_per_second": <requests> or null}')
                per_second = payload.get("rate_limit_per_second")
                if per_second is not None and (
                    isinstance(per_second, bool) or not isinstance(per_second, int)
                ):
                    raise ValueError("rate_limit_per_second must be a whole number or null")
                self.set_rate_limit(per_second)
                return self.settings()
            if route == ("GET", ("settings",)) and len(parts) == 1:
                return self.settings()
            if route == ("PUT", ("objects",)) and len(parts) == 1:
                payload = _json_body(request)
                if isinstance(payload, list):
                    payload = {"objects": payload}
                if not isinstance(payload, dict) or not isinstance(payload.get("objects"), list):
                    raise ValueError('expected {"objects": [...]} or a list of objects')
                return {
                    "loaded": self.put_objects(
                        payload["objects"], payload.get("api_version"), payload.get("created")
                    )
                }
            if route == ("DELETE", ("objects",)) and len(parts) == 1:
                self.reset_objects()
                return {"ok": True}
            if route == ("GET", ("objects",)) and len(parts) == 2:
                found = [s for s in self.store.objects.values() if s.object_id == parts[1]]
                if not found:
                    raise KeyError(f"no object {parts[1]}")
                return [{**s.summary(), "body": s.obj} for s in found]
            if route == ("GET", ("requests",)) and len(parts) == 1:
                return [r.to_json() for r in self.recorded]
            if route == ("DELETE", ("requests",)) and len(parts) == 1:
                self.recorded.clear()
                return {"ok": True}
            if route == ("POST", ("reset",)) and len(parts) == 1:
                self.reset_objects()
                self.recorded.clear()
                return {"ok": True}
        raise KeyError(f"no admin route {method} {ADMIN_PREFIX}/{'/'.join(parts)}")

    def put_objects(self, objects: Iterable[Mapping[str, Any]], version: Any, created: Any) -> int:
        if version is not None and not isinstance(version, str):
            raise ValueError("api_version must be a string")
        if created is None:
            return self.store.put_extra(objects, version, False, None, None)
        if isinstance(created, bool) or not isinstance(created, int):
            raise ValueError("created must be an integer")
        return self.store.put_carried(objects, version, created)

    def settings(self) -> dict[str, Any]:
        return {"rate_limit_per_second": self.limit.limit if self.limit is not None else None}

    def state(self) -> dict[str, Any]:
        return {
            "pinned_version": self.pinned_version,
            "api_keys": sorted(_mask(key) for key in self.keys),
            "objects": [s.summary() for s in self.store.objects.values()],
            "event_count": len(self.store.events),
            "request_count": len(self.recorded),
            **self.settings(),
        }


def _json_body(request: Request) -> Any:
    raw = request.get_data()
    if not raw:
        raise ValueError("expected a JSON body")
    return loads(raw)


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", param=name) from None


def _expansions(query: list[tuple[str, str]], allowed: set[str]) -> list[str]:
    """The ``expand[]`` / ``expand[N]`` values, checked against Stripe's depth limit."""
    paths = [
        value
        for param, value in query
        if param == "expand[]" or (param.startswith("expand[") and param[7:-1].isdigit())
    ]
    for path in paths:
        if not path or any(not part for part in path.split(".")):
            raise StripeError(400, f"Invalid expand path: {path!r}", param="expand")
        depth = len([p for p in path.split(".") if p != "data"])
        if depth > _MAX_EXPAND_DEPTH:
            raise StripeError(
                400,
                f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property ({path}).",
                param="expand",
            )
    return paths


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request (they would drown the stack's own output)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeStripeApi:
    """An in-process fake of the Stripe API (reads), served by Werkzeug from a daemon thread.

    Its ``url`` (``http://127.0.0.1:<port>``, no ``/v1``) is the value for ``STRIPE_API_URL``.

    >>> with FakeStripeApi(api_keys=["rk_test_demo"]) as stripe_api:  # doctest: +SKIP
    ...     stripe_api.load_event(event, extra_objects=[payment_intent])
    ...     os.environ["STRIPE_API_URL"] = stripe_api.url
    """

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
        """``clock`` (Unix seconds) is what "the last 30 days" of events count from;
        ``rate_limit_per_second`` (None: none) answers 429 ``rate_limit`` past that many
        requests in any second, per account and mode, as Stripe's rate limiter does (its
        own limits are 100 a second in live mode and 25 in test mode)."""
        self._app = _App(api_keys, pinned_version, clock, rate_limit_per_second)
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve from a daemon thread."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the fake Stripe API is already running")
            server = make_server(
                self._host, self._port, self._app, threaded=True, request_handler=_QuietHandler
            )
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-stripe-api-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._server = self._thread = None
            server.shutdown()
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
            raise RuntimeError("the fake Stripe API is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``STRIPE_API_URL`` (paths add ``/v1``)."""
        return f"http://{self._host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    @property
    def wsgi_app(self) -> Any:
        """The API as a WSGI application, to serve in-process (``httpx.WSGITransport``)."""
        return self._app

    @property
    def pinned_version(self) -> str:
        return self._app.pinned_version

    # ---- data ------------------------------------------------------------------------------

    def add_api_key(self, key: str) -> None:
        """Accept another key (``sk_live_``/``rk_live_`` keys see live-mode objects only)."""
        self._app.add_key(key)

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
            return self._app.put_objects(list(objects), api_version, created)

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Keep events for ``GET /v1/events`` as given, without loading the objects they
        carry (a seeded history holds each object's current state already). An event needs
        ``id``, ``type`` and ``created``; its ``livemode`` and ``account`` say who sees it.
        Returns how many were kept."""
        with self._app.lock:
            count = 0
            for event in events:
                self._app.store.record_event(event)
                count += 1
            return count

    def set_rate_limit(self, per_second: int | None) -> None:
        """Answer 429 ``rate_limit`` past ``per_second`` requests in any second (None: off)."""
        self._app.set_rate_limit(per_second)

    def now(self) -> int:
        """The fake's clock, Unix seconds."""
        return self._app.now()

    def clear_objects(self) -> None:
        """Forget every object (recorded requests stay)."""
        self._app.reset_objects()

    def reset(self) -> None:
        """Forget every object, event and recorded request (the keys and settings stay)."""
        with self._app.lock:
            self._app.reset_objects()
            self._app.recorded.clear()

    def requests(self) -> list[StripeRequest]:
        """Every ``/v1`` request received (not the admin calls), in arrival order."""
        with self._app.lock:
            return list(self._app.recorded)

    def state(self) -> dict[str, Any]:
        """What ``GET /_stripe/state`` answers."""
        with self._app.lock:
            return self._app.state()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    import signal

    parser = argparse.ArgumentParser(
        prog="python -m partnero_bridge_cli.local.stripe_api",
        description="Local stand-in for the Stripe API, reads only (for the stack and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=4030, help="port to bind (0 = any free port)")
    parser.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help=f"an accepted API key (repeatable; default: {DEMO_API_KEY})",
    )
    parser.add_argument(
        "--event",
        action="append",
        dest="events",
        type=Path,
        default=[],
        metavar="FILE",
        help="load a Stripe event from a JSON file (repeatable)",
    )
    args = parser.parse_args(argv)
    fake = FakeStripeApi(api_keys=args.keys or [DEMO_API_KEY], host=args.host, port=args.port)
    event_files: list[Path] = args.events
    for path in event_files:
        try:
            fake.load_event(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            parser.error(f"cannot load event {path}: {error}")
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        fake.start()
        print(f"Fake Stripe API listening on {fake.url}", flush=True)
        print(f"  pinned version {fake.pinned_version}; state: {fake.admin_url}/state", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Fake Stripe API stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
