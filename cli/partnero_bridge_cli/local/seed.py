"""A seeded history of sales in the local fakes, and what Partnero should hold for each.

Reconciliation, backfill and their benchmarks need a past to read: payments made days or
weeks ago, some refunded or disputed since, some Ecwid orders cancelled or deleted. This
module makes one, deterministic from a seed, and says for every sale what the bridge's rules
make of it, so a test can compare a report with the truth:

* :func:`plan_stripe` makes Stripe payments in the pinned API version's shapes
  (``2025-03-31.basil``): one-off PaymentIntents with their charge, checkout sessions that
  made one, and subscription invoices paid by a PaymentIntent (an ``invoice_payment``), in
  USD and EUR; refunds (some partial, some failed), disputes (open, lost, won, inquiries),
  referral metadata (``partnero_partner``, ``partnero_customer_key``) on some, and the events
  Stripe would have sent. :meth:`StripeSeed.apply` loads them into a
  :class:`~partnero_bridge_cli.local.stripe_api.FakeStripeApi`, :meth:`StripeSeed.push`
  into a running one through its admin interface;
* :func:`plan_ecwid` makes Ecwid orders (paid, partially refunded, refunded, cancelled,
  awaiting payment, and deleted ones with their deletion date) for one store;
  :meth:`EcwidSeed.apply` / :meth:`EcwidSeed.push` store them in a
  :class:`~partnero_bridge_cli.local.ecwid.FakeEcwid`;
* :func:`seed_manual_transaction` creates, through Partnero's API, a transaction outside the
  bridge's key namespace, as someone working in Partnero's dashboard would.

Each sale's :class:`SeededSale` gives its transaction key, times, money and the amount
Partnero should hold under the bridge's default rules (Stripe: the payment less counted
refunds and withdrawing disputes, tax-excluded with no tax seeded; Ecwid: the ``net`` basis
``total - tax - shipping`` times the share not refunded, rounded half-up once). A sale is
referred when its partner is named; an unreferred one reaches Partnero only through a
customer Partnero already knows, which a fresh sandbox does not.

Times are Unix seconds chosen uniformly in ``[start, end)``; refunds, disputes, updates and
deletions come after their sale and before ``end``.

Run against a running local stack (``make run``) with::

    python -m partnero_bridge_cli.local.seed --count 200 --days 60 \\
        --stripe-admin http://127.0.0.1:4030/_stripe --ecwid-admin http://127.0.0.1:4020/_ecwid
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

import httpx

from partnero_bridge.money import decimals, is_currency
from partnero_bridge_cli.local.ecwid import FakeEcwid, ecwid_date
from partnero_bridge_cli.local.fakeapp import dumps
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi

__all__ = [
    "DEFAULT_PARTNERS",
    "EcwidSeed",
    "SeedManifest",
    "SeededSale",
    "StripeSeed",
    "main",
    "plan_ecwid",
    "plan_stripe",
    "seed_manual_transaction",
]

DEFAULT_PARTNERS: Final = ("partner-alpha", "partner-beta", "partner-gamma")
_CENT: Final = Decimal("0.01")
_DAY: Final = 86400
# Stripe outcomes, with their weights: what happened to a payment after it succeeded.
_STRIPE_OUTCOMES: Final = (
    ("paid", 58),
    ("partially_refunded", 15),
    ("refunded", 8),
    ("refund_failed", 4),  # a refund that failed: the money stayed, the sale stands
    ("disputed", 6),  # an open or lost dispute withdraws the payment
    ("dispute_won", 4),
    ("inquiry", 5),  # a warning_* inquiry withdraws nothing
)
_STRIPE_KINDS: Final = (("payment_intent", 40), ("checkout", 25), ("invoice", 35))
_ECWID_OUTCOMES: Final = (
    ("PAID", 55),
    ("PARTIALLY_REFUNDED", 15),
    ("REFUNDED", 7),
    ("CANCELLED", 8),
    ("AWAITING_PAYMENT", 5),
    ("DELETED", 10),  # paid, then deleted from the store
)
_DISPUTE_WITHDRAWS: Final = ("needs_response", "under_review", "lost")
_FIRST_NAMES: Final = ("Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon")
_LAST_NAMES: Final = ("Moreau", "Okafor", "Silva", "Tanaka", "Novak", "Berg", "Rossi", "Khan")


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededSale:
    """One seeded sale and what the bridge's default rules make of it.

    Money is in major units (Decimal); times in Unix seconds.
    """

    source: Literal["stripe", "ecwid"]
    transaction_key: str
    """``stripe_<pi_/in_ id>`` or ``ecwid_<storeId>_<orderId>``."""
    object_id: str
    """The payment's id: the PaymentIntent (one-off, checkout) or invoice; the public order id."""
    kind: str
    """Stripe: ``payment_intent``, ``checkout`` or ``invoice``; Ecwid: ``order``."""
    outcome: str
    """Stripe: one of ``paid``, ``partially_refunded``, ``refunded``, ``refund_failed``,
    ``disputed``, ``dispute_won``, ``inquiry``; Ecwid: its ``paymentStatus`` or ``DELETED``."""
    currency: str
    created: int
    touched: int
    """The last change: the last refund or dispute, the order's ``updateTimestamp``, its
    deletion."""
    paid: Decimal
    """What the customer paid (Stripe amount, Ecwid ``total``)."""
    basis: Decimal
    """The commission basis before refunds (Stripe: ``paid``; Ecwid: total - tax - shipping)."""
    refunded: Decimal
    """Refunded and counted (succeeded or pending refunds; Ecwid ``refundedAmount``)."""
    disputed: Decimal
    """Withdrawn by open or lost disputes."""
    amount: Decimal | None
    """What Partnero should hold for the sale if it is referred; None: nothing."""
    reason: str
    """The decision's reason code: ``paid``, ``partially_refunded``, ``refunded``,
    ``disputed``, ``cancelled``, ``not_paid``, ``deleted``."""
    partner_key: str | None
    customer_key: str | None
    email: str | None
    deleted_at: int | None = None
    store_id: int | None = None
    stripe_ids: tuple[str, ...] = ()
    """Every Stripe object seeded for the payment (customer, intent, charge, refunds...)."""

    @property
    def referred(self) -> bool:
        """A partner is named: Partnero can attribute the sale without knowing the customer."""
        return self.partner_key is not None

    @property
    def expected(self) -> Decimal | None:
        """What a fresh Partnero program should hold for it: ``amount`` when referred."""
        return self.amount if self.referred else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("paid", "basis", "refunded", "disputed", "amount"):
            data[name] = None if data[name] is None else str(data[name])
        data["stripe_ids"] = list(self.stripe_ids)
        data["referred"], data["expected"] = self.referred, _text(self.expected)
        return data


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


@dataclass(frozen=True)
class SeedManifest:
    """The sales seeded, in creation order, with the questions a test asks of them."""

    sales: tuple[SeededSale, ...] = ()
    manual_keys: tuple[str, ...] = ()
    """Partnero transactions outside the bridge's namespace (never to be touched)."""

    def __add__(self, other: SeedManifest) -> SeedManifest:
        return SeedManifest(self.sales + other.sales, self.manual_keys + other.manual_keys)

    def by_key(self) -> dict[str, SeededSale]:
        return {sale.transaction_key: sale for sale in self.sales}

    def select(
        self,
        source: Literal["stripe", "ecwid"] | None = None,
        *,
        created_from: int | None = None,
        created_to: int | None = None,
        touched_from: int | None = None,
        touched_to: int | None = None,
    ) -> list[SeededSale]:
        """The sales of a source created (and/or last touched) within inclusive bounds."""

        def within(value: int, low: int | None, high: int | None) -> bool:
            return (low is None or value >= low) and (high is None or value <= high)

        return [
            sale
            for sale in self.sales
            if (source is None or sale.source == source)
            and within(sale.created, created_from, created_to)
            and within(sale.touched, touched_from, touched_to)
        ]

    def expected_totals(self, sales: Iterable[SeededSale] | None = None) -> dict[str, Decimal]:
        """What Partnero should hold, per currency, for the referred sales (default: all)."""
        totals: dict[str, Decimal] = {}
        for sale in self.sales if sales is None else sales:
            if sale.expected is not None:
                totals[sale.currency] = totals.get(sale.currency, Decimal(0)) + sale.expected
        return dict(sorted(totals.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "sales": [sale.to_json() for sale in self.sales],
            "manual_keys": list(self.manual_keys),
            "expected_totals": {c: str(v) for c, v in self.expected_totals().items()},
        }


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in weighted], [weight for _, weight in weighted])[0]


def _times(rng: random.Random, count: int, start: int, end: int) -> list[int]:
    if count < 0:
        raise ValueError("count must be 0 or more")
    if end <= start:
        raise ValueError("end must be after start")
    return sorted(rng.randrange(start, end) for _ in range(count))


def _later(rng: random.Random, after: int, end: int, most: int = 10 * _DAY) -> int:
    """A time a minute to ``most`` seconds after ``after``, before ``end`` when there is room
    (a sale in the last minute before ``end`` gets its refund a minute later all the same)."""
    latest = min(after + most, end - 1)
    return after + 60 if latest <= after + 60 else rng.randrange(after + 60, latest + 1)


def _person(rng: random.Random, number: int) -> tuple[str, str, str]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    return first, last, f"{first.lower()}.{last.lower()}.{number}@example.com"


def _share(basis: Decimal, paid: Decimal, refunded: Decimal) -> Decimal:
    """``basis x (paid - refunded) / paid``, rounded half-up once to the cent."""
    left = min(max(paid - refunded, Decimal(0)), paid)
    return (basis * left / paid).quantize(_CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Stripe
# --------------------------------------------------------------------------------------------


@dataclass
class StripeSeed:
    """Stripe objects (pinned version), the events Stripe would have sent, and the manifest."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    manifest: SeedManifest = field(default_factory=SeedManifest)

    def apply(self, fake: FakeStripeApi) -> None:
        """Load everything into an in-process fake (objects served as their current state)."""
        fake.put_objects(self.objects, api_version=PINNED_VERSION)
        fake.add_events(self.events)

    def push(self, admin_url: str, *, timeout: float = 60.0) -> None:
        """Load everything into a running fake through ``<admin_url>`` (``.../_stripe``)."""
        with httpx.Client(base_url=admin_url.rstrip("/"), timeout=timeout) as client:
            loaded = client.put(
                "/objects", json={"objects": self.objects, "api_version": PINNED_VERSION}
            )
            loaded.raise_for_status()
            recorded = client.put("/events", json={"events": self.events})
            recorded.raise_for_status()


class _StripeBuilder:
    def __init__(self, rng: random.Random, tag: str, end: int, livemode: bool) -> None:
        self.rng, self.tag, self.end, self.livemode = rng, tag, end, livemode
        self.seed = StripeSeed()
        self.sales: list[SeededSale] = []
        self.event_number = 0

    def obj(self, kind: str, object_id: str, created: int, **fields: Any) -> dict[str, Any]:
        body = {"id": object_id, "object": kind, "created": created, "livemode": self.livemode}
        body.update(fields)
        self.seed.objects.append(body)
        return body

    def event(self, kind: str, obj: Mapping[str, Any], created: int) -> None:
        self.event_number += 1
        self.seed.events.append(
            {
                "id": f"evt_{self.tag}{self.event_number:07d}",
                "object": "event",
                "api_version": PINNED_VERSION,
                "created": created,
                "livemode": self.livemode,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": kind,
                "data": {"object": copy.deepcopy(dict(obj))},
            }
        )

    def payment(
        self,
        number: int,
        created: int,
        currencies: Sequence[str],
        partners: Sequence[str],
        referred_share: float,
    ) -> None:
        rng, tag = self.rng, self.tag
        kind = _pick(rng, _STRIPE_KINDS)
        outcome = _pick(rng, _STRIPE_OUTCOMES)
        currency = rng.choice(currencies).lower()
        amount = rng.randrange(500, 50001)  # minor units
        first, last, email = _person(rng, number)
        referral: dict[str, str] = {}
        partner = customer_key = None
        if rng.random() < referred_share:
            partner, customer_key = rng.choice(partners), email
            referral = {"partnero_partner": partner, "partnero_customer_key": customer_key}
        ids: list[str] = []
        suffix = f"{tag}{number:06d}"

        customer = self.obj(
            "customer",
            f"cus_{suffix}",
            created - 60,
            email=email,
            name=f"{first} {last}",
            metadata={},
            currency=currency,
        )
        ids.append(customer["id"])
        intent_id, charge_id = f"pi_{suffix}", f"ch_{suffix}"
        payment_metadata = referral if kind == "payment_intent" else {}
        intent = self.obj(
            "payment_intent",
            intent_id,
            created,
            amount=amount,
            amount_received=amount,
            amount_capturable=0,
            capture_method="automatic",
            currency=currency,
            customer=customer["id"],
            latest_charge=charge_id,
            metadata=payment_metadata,
            status="succeeded",
            receipt_email=email,
            description=f"Seeded payment {number}",
        )
        charge = self.obj(
            "charge",
            charge_id,
            created,
            amount=amount,
            amount_captured=amount,
            amount_refunded=0,
            captured=True,
            refunded=False,
            disputed=False,
            paid=True,
            status="succeeded",
            currency=currency,
            customer=customer["id"],
            payment_intent=intent_id,
            metadata={},
            billing_details={"email": email, "name": f"{first} {last}"},
        )
        ids += [intent_id, charge_id]
        transaction_key, object_id = f"stripe_{intent_id}", intent_id
        if kind == "checkout":
            session = self.obj(
                "checkout.session",
                f"cs_{suffix}",
                created - 30,
                mode="payment",
                status="complete",
                payment_status="paid",
                payment_intent=intent_id,
                customer=customer["id"],
                customer_details={"email": email, "name": f"{first} {last}"},
                client_reference_id=customer_key,
                metadata=referral,
                amount_total=amount,
                amount_subtotal=amount,
                currency=currency,
                invoice=None,
                subscription=None,
                total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            )
            ids.append(session["id"])
            self.event("checkout.session.completed", session, created)
        elif kind == "invoice":
            subscription = self.obj(
                "subscription",
                f"sub_{suffix}",
                created - 3600,
                customer=customer["id"],
                status="active",
                metadata=referral,
                currency=currency,
            )
            invoice_id = f"in_{suffix}"
            invoice = self.obj(
                "invoice",
                invoice_id,
                created,
                status="paid",
                currency=currency,
                customer=customer["id"],
                customer_email=email,
                customer_name=f"{first} {last}",
                total=amount,
                subtotal=amount,
                total_excluding_tax=amount,
                amount_due=amount,
                amount_paid=amount,
                amount_remaining=0,
                collection_method="charge_automatically",
                billing_reason="subscription_cycle",
                metadata={},
                parent={
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "subscription": subscription["id"],
                        "metadata": referral,
                    },
                },
                status_transitions={"finalized_at": created, "paid_at": created},
            )
            payment = self.obj(
                "invoice_payment",
                f"inpay_{suffix}",
                created,
                invoice=invoice_id,
                amount_paid=amount,
                amount_requested=amount,
                currency=currency,
                status="paid",
                is_default=True,
                payment={"type": "payment_intent", "payment_intent": intent_id},
                status_transitions={"canceled_at": None, "paid_at": created},
            )
            ids += [subscription["id"], invoice_id, payment["id"]]
            transaction_key, object_id = f"stripe_{invoice_id}", invoice_id
            self.event("invoice.paid", invoice, created)
            self.event("invoice_payment.paid", payment, created)
        self.event("payment_intent.succeeded", intent, created)
        self.event("charge.succeeded", charge, created)

        refunded, disputed, touched = self._aftermath(
            outcome, created, amount, currency, suffix, charge, ids
        )
        reason, due = _what_is_due(amount, refunded, disputed)
        self.sales.append(
            SeededSale(
                source="stripe",
                transaction_key=transaction_key,
                object_id=object_id,
                kind=kind,
                outcome=outcome,
                currency=currency.upper(),
                created=created,
                touched=touched,
                paid=Decimal(amount).scaleb(-2),
                basis=Decimal(amount).scaleb(-2),
                refunded=Decimal(refunded).scaleb(-2),
                disputed=Decimal(disputed).scaleb(-2),
                amount=due,
                reason=reason,
                partner_key=partner,
                customer_key=customer_key,
                email=email,
                stripe_ids=tuple(ids),
            )
        )

    def _aftermath(
        self,
        outcome: str,
        created: int,
        amount: int,
        currency: str,
        suffix: str,
        charge: Mapping[str, Any],
        ids: list[str],
    ) -> tuple[int, int, int]:
        """A refund or dispute the outcome calls for, with its events: (refunded, disputed
        in minor units, when the payment was last touched)."""
        if outcome in ("partially_refunded", "refunded", "refund_failed"):
            refunded, touched = self._refund(
                outcome, created, amount, currency, suffix, charge, ids
            )
            return refunded, 0, touched
        if outcome in ("disputed", "dispute_won", "inquiry"):
            disputed, touched = self._dispute(outcome, created, amount, currency, suffix, ids)
            return 0, disputed, touched
        return 0, 0, created

    def _refund(
        self,
        outcome: str,
        created: int,
        amount: int,
        currency: str,
        suffix: str,
        charge: Mapping[str, Any],
        ids: list[str],
    ) -> tuple[int, int]:
        rng = self.rng
        charge_id, intent_id = charge["id"], charge["payment_intent"]
        when = _later(rng, created, self.end)
        part = amount if outcome == "refunded" else max(1, amount * rng.randrange(10, 61) // 100)
        status = "failed" if outcome == "refund_failed" else "succeeded"
        refund = self.obj(
            "refund",
            f"re_{suffix}",
            when,
            amount=part,
            charge=charge_id,
            payment_intent=intent_id,
            currency=currency,
            status=status,
            reason="requested_by_customer",
            metadata={},
        )
        ids.append(refund["id"])
        self.event("refund.created", refund, when)
        if status != "succeeded":
            self.event("refund.failed", refund, when)
            return 0, when
        self.event(
            "charge.refunded",
            {**charge, "amount_refunded": part, "refunded": part >= amount},
            when,
        )
        return part, when

    def _dispute(
        self, outcome: str, created: int, amount: int, currency: str, suffix: str, ids: list[str]
    ) -> tuple[int, int]:
        rng = self.rng
        when = _later(rng, created, self.end)
        if outcome == "disputed":
            status = rng.choice(_DISPUTE_WITHDRAWS)
        elif outcome == "dispute_won":
            status = "won"
        else:
            status = rng.choice(("warning_needs_response", "warning_closed"))
        dispute = self.obj(
            "dispute",
            f"dp_{suffix}",
            when,
            amount=amount,
            charge=f"ch_{suffix}",
            payment_intent=f"pi_{suffix}",
            currency=currency,
            status=status,
            reason="fraudulent" if outcome != "inquiry" else "general",
            is_charge_refundable=False,
            metadata={},
        )
        ids.append(dispute["id"])
        self.event("charge.dispute.created", dispute, when)
        if status in ("won", "lost", "warning_closed"):
            self.event("charge.dispute.closed", dispute, when)
        return (amount if status in _DISPUTE_WITHDRAWS else 0), when


def _what_is_due(amount: int, refunded: int, disputed: int) -> tuple[str, Decimal | None]:
    """The decision's reason and amount (major units) for a payment of ``amount`` minor
    units after what was refunded and disputed."""
    left = amount - refunded - disputed
    if left <= 0:
        return ("disputed" if disputed else "refunded"), None
    return ("partially_refunded" if refunded else "paid"), Decimal(left).scaleb(-2)


def plan_stripe(
    count: int,
    *,
    start: int,
    end: int,
    seed: int = 0,
    currencies: Sequence[str] = ("usd", "eur"),
    partners: Sequence[str] = DEFAULT_PARTNERS,
    referred_share: float = 0.6,
    tag: str | None = None,
    livemode: bool = False,
) -> StripeSeed:
    """``count`` Stripe payments created in ``[start, end)``, the same for the same arguments.

    Ids are ``<prefix>_<tag><number>`` (``pi_S0N000001``...); ``tag`` (default ``S<seed>N``)
    keeps two seeds in one fake apart. No tax is seeded, so a payment's basis is its amount.
    """
    if not currencies or not partners:
        raise ValueError("currencies and partners must not be empty")
    rng = random.Random(f"stripe:{seed}")  # noqa: S311 - test data, reproducible by design
    builder = _StripeBuilder(rng, tag if tag is not None else f"S{seed}N", end, livemode)
    for number, created in enumerate(_times(rng, count, start, end), start=1):
        builder.payment(number, created, currencies, partners, referred_share)
    builder.seed.manifest = SeedManifest(tuple(builder.sales))
    return builder.seed


# --------------------------------------------------------------------------------------------
# Ecwid
# --------------------------------------------------------------------------------------------


@dataclass
class EcwidSeed:
    """Ecwid orders of one store, the deletions among them, and the manifest."""

    store_id: int
    currency: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    deletions: list[tuple[str, int]] = field(default_factory=list)
    """(public order id, deleted at) for the orders deleted since, oldest first."""
    manifest: SeedManifest = field(default_factory=SeedManifest)

    def apply(self, fake: FakeEcwid) -> None:
        """Store the orders in an in-process fake (the store must exist, in ``currency``)."""
        held = fake.store_currency(self.store_id)
        if held != self.currency:
            raise ValueError(
                f"store {self.store_id} is in {held}; the orders were planned in {self.currency}"
            )
        fake.put_orders(self.store_id, self.orders)
        for order_id, when in self.deletions:
            fake.delete_order(self.store_id, order_id, deleted_at=when)

    def push(self, admin_url: str, *, timeout: float = 60.0) -> None:
        """Store the orders in a running fake through ``<admin_url>`` (``.../_ecwid``)."""
        with httpx.Client(base_url=admin_url.rstrip("/"), timeout=timeout) as client:
            store = client.get(f"/stores/{self.store_id}")
            store.raise_for_status()
            if store.json().get("currency") != self.currency:
                raise ValueError(f"store {self.store_id} is not in {self.currency}")
            headers = {"Content-Type": "application/json"}
            for start in range(0, len(self.orders), 500):
                batch = dumps(self.orders[start : start + 500])  # exact Decimal amounts
                stored = client.put(
                    f"/stores/{self.store_id}/orders", content=batch, headers=headers
                )
                stored.raise_for_status()
            for order_id, when in self.deletions:
                deleted = client.request(
                    "DELETE",
                    f"/stores/{self.store_id}/orders/{order_id}",
                    json={"deleted_at": when},
                )
                deleted.raise_for_status()


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def plan_ecwid(
    count: int,
    *,
    store_id: int,
    start: int,
    end: int,
    seed: int = 0,
    currency: str = "USD",
    partners: Sequence[str] = DEFAULT_PARTNERS,
    referred_share: float = 0.6,
    partner_field: str = "partnero_partner",
    tag: str | None = None,
) -> EcwidSeed:
    """``count`` Ecwid orders of ``store_id`` placed in ``[start, end)``, deterministic.

    Public ids are ``<tag><number>`` (``E0N00001``...), ``internalId`` and ``orderNumber``
    ``7<seed:03><number:06>``. Amounts have cents (two-decimal currencies only). The partner
    sits in the hidden extra field ``partner_field`` (``extraFields`` and
    ``orderExtraFields``), as the storefront snippet puts it.
    """
    if not partners:
        raise ValueError("partners must not be empty")
    if not is_currency(currency) or decimals(currency) != 2:
        raise ValueError("plan_ecwid seeds orders in a two-decimal ISO 4217 currency only")
    rng = random.Random(f"ecwid:{seed}")  # noqa: S311 - test data, reproducible by design
    tag = tag if tag is not None else f"E{seed}N"
    plan = EcwidSeed(store_id=store_id, currency=currency.upper())
    sales: list[SeededSale] = []
    for number, created in enumerate(_times(rng, count, start, end), start=1):
        outcome = _pick(rng, _ECWID_OUTCOMES)
        first, last, email = _person(rng, number)
        public, internal = f"{tag}{number:05d}", int(f"7{seed % 1000:03d}{number:06d}")
        subtotal = _money(Decimal(rng.randrange(500, 30001)).scaleb(-2))
        tax = _money(subtotal * Decimal(rng.choice((0, 5, 8, 20))) / 100)
        shipping = Decimal(rng.choice(("0", "4.99", "9.99")))
        total = subtotal + tax + shipping
        partner = rng.choice(partners) if rng.random() < referred_share else None
        status = "PAID" if outcome == "DELETED" else outcome
        updated = created + rng.randrange(60, 3600)
        refunds: list[dict[str, Any]] = []
        refunded = Decimal(0)
        if outcome in ("PARTIALLY_REFUNDED", "REFUNDED"):
            updated = _later(rng, created, end)
            refunded = (
                total
                if outcome == "REFUNDED"
                else _money(total * Decimal(rng.randrange(10, 61)) / 100)
            )
            refunds = [
                {
                    "date": ecwid_date(updated),
                    "source": "CP",
                    "reason": "Customer request",
                    "amount": refunded,
                }
            ]
        elif outcome == "CANCELLED":
            updated = _later(rng, created, end)
        updated = min(updated, end - 1) if end - 1 > created else created
        order: dict[str, Any] = {
            "id": public,
            "internalId": internal,
            "orderNumber": internal,
            "vendorOrderNumber": public,
            "subtotal": subtotal,
            "tax": tax,
            "total": total,
            "couponDiscount": Decimal(0),
            "discount": Decimal(0),
            "refundedAmount": refunded,
            "refunds": refunds,
            "paymentStatus": status,
            "fulfillmentStatus": "AWAITING_PROCESSING" if status == "PAID" else "WILL_NOT_DELIVER",
            "paymentMethod": "Credit card",
            "email": email,
            "customerId": 900000 + number if rng.random() < 0.7 else None,
            "billingPerson": {"name": f"{first} {last}", "firstName": first, "lastName": last},
            "shippingOption": {
                "shippingMethodName": "Standard" if shipping else "Pickup",
                "shippingRate": shipping,
                "isPickup": not shipping,
            },
            "items": [
                {
                    "id": internal * 10,
                    "productId": 4000 + number % 50,
                    "sku": f"SKU-{number % 50:03d}",
                    "name": f"Seeded product {number % 50}",
                    "price": subtotal,
                    "quantity": 1,
                }
            ],
            "customSurcharges": [],
            "pricesIncludeTax": False,
            "extraFields": {partner_field: partner} if partner else {},
            "orderExtraFields": (
                [{"id": partner_field, "value": partner, "orderDetailsDisplaySection": "hidden"}]
                if partner
                else []
            ),
            "createDate": ecwid_date(created),
            "createTimestamp": created,
            "updateDate": ecwid_date(updated),
            "updateTimestamp": updated,
        }
        if order["customerId"] is None:
            del order["customerId"]
        plan.orders.append(order)
        deleted_at = None
        touched = updated
        if outcome == "DELETED":
            deleted_at = _later(rng, updated, end)
            plan.deletions.append((public, deleted_at))
            touched = deleted_at
        basis = total - tax - shipping
        if outcome in ("PAID", "PARTIALLY_REFUNDED"):
            due: Decimal | None = _share(basis, total, refunded)
            reason = "partially_refunded" if refunded else "paid"
        else:
            due = None
            reason = {
                "REFUNDED": "refunded",
                "CANCELLED": "cancelled",
                "AWAITING_PAYMENT": "not_paid",
                "DELETED": "deleted",
            }[outcome]
        sales.append(
            SeededSale(
                source="ecwid",
                transaction_key=f"ecwid_{store_id}_{public}",
                object_id=public,
                kind="order",
                outcome=outcome,
                currency=plan.currency,
                created=created,
                touched=touched,
                paid=total,
                basis=basis,
                refunded=refunded,
                disputed=Decimal(0),
                amount=due,
                reason=reason,
                partner_key=partner,
                customer_key=email,
                email=email,
                deleted_at=deleted_at,
                store_id=store_id,
            )
        )
    plan.deletions.sort(key=lambda item: item[1])
    plan.manifest = SeedManifest(tuple(sales))
    return plan


# --------------------------------------------------------------------------------------------
# Partnero: a transaction the bridge never made
# --------------------------------------------------------------------------------------------


def seed_manual_transaction(
    partnero_url: str,
    api_key: str,
    *,
    partner_key: str,
    key: str = "manual_adjustment_1",
    customer_key: str = "manual.customer@example.com",
    amount: Decimal = Decimal("42.00"),
    currency: str = "USD",
    created_at: int | None = None,
) -> str:
    """Create a transaction outside the bridge's namespace through Partnero's API.

    ``POST /v1/transactions`` with ``options.create_customer`` (the customer joins
    ``partner_key``), as a person adding a sale in Partnero's dashboard or another
    integration would. ``partnero_url`` ends in ``/v1``. Returns the transaction key; a
    refusal raises ``httpx.HTTPStatusError``.
    """
    if key.startswith(("stripe_", "ecwid_")):
        raise ValueError("a manual transaction's key must be outside the bridge's namespace")
    body: dict[str, Any] = {
        "key": key,
        "amount": str(amount),
        "amount_units": currency.upper(),
        "action": "sale",
        "customer": {"key": customer_key, "email": customer_key, "partner": {"key": partner_key}},
        "partner": {"key": partner_key},
        "options": {"create_customer": True},
    }
    if created_at is not None:
        body["created_at"] = created_at
    with httpx.Client(timeout=10.0) as client:
        answer = client.post(
            partnero_url.rstrip("/") + "/transactions",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        answer.raise_for_status()
    return key


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Seed running fakes over their admin interfaces and print the manifest as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m partnero_bridge_cli.local.seed",
        description="Seed the local Stripe and Ecwid fakes with a deterministic past.",
    )
    parser.add_argument("--count", type=int, default=100, help="payments and orders, each")
    parser.add_argument("--seed", type=int, default=0, help="the same seed makes the same past")
    parser.add_argument("--days", type=int, default=45, help="how far back the sales go")
    parser.add_argument("--stripe-admin", help="the fake Stripe API's admin URL (.../_stripe)")
    parser.add_argument("--ecwid-admin", help="the fake Ecwid API's admin URL (.../_ecwid)")
    parser.add_argument("--store", type=int, default=1003, help="the Ecwid store to fill")
    parser.add_argument("--currency", default="USD", help="that store's currency")
    parser.add_argument("--manifest", help="write the manifest to this file, not stdout")
    args = parser.parse_args(argv)
    if not args.stripe_admin and not args.ecwid_admin:
        parser.error("give --stripe-admin and/or --ecwid-admin")
    end = int(time.time())
    start = end - args.days * _DAY
    manifest = SeedManifest()
    if args.stripe_admin:
        stripe = plan_stripe(args.count, start=start, end=end, seed=args.seed)
        stripe.push(args.stripe_admin)
        manifest += stripe.manifest
    if args.ecwid_admin:
        ecwid = plan_ecwid(
            args.count,
            store_id=args.store,
            currency=args.currency,
            start=start,
            end=end,
            seed=args.seed,
        )
        ecwid.push(args.ecwid_admin)
        manifest += ecwid.manifest
    text = json.dumps(manifest.to_json(), indent=2)
    if args.manifest:
        with open(args.manifest, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
