"""The comparison, pure: what the source says is due against what Partnero holds.

For one payment (a Stripe payment or an Ecwid order) it takes the target the webhooks'
own decision code makes from the source's state now (``stripe.payment.decide_payment``,
``ecwid.mapping.decide``, with the identity the ledger fixed), the ledger's record, and
what Partnero answered for each transaction key the ledger recorded (or the payment's
base key), and gives one :class:`FindingKind` with the amounts, in Decimal major units, in the
payment's currency.

Kinds, in the order they are decided:

- ``undecidable``: the source could not be read or decided (an order Ecwid serves in a
  shape with negative money, an unknown currency, a payment Stripe answers 404 for),
  Partnero could not be asked, or Partnero holds a transaction under the bridge's key that
  the ledger never recorded (an earlier release or someone else made it: left alone);
- ``missing``: something is due and Partnero holds nothing (the referral checked as the
  webhooks check it, below);
- ``not_referred``: money, but nobody to credit it to: no customer and no partner, a partner
  key Partnero refused, no partner key and a customer Partnero does not know, or a customer
  whose referral postdates the payment (a payment is never attributed to a referral made
  after it; the webhooks' own wait for a sign-up, ``BRIDGE_SIGNUP_WAIT_SECONDS``, is the
  only grace);
- ``adjustment_needed``: the partner's reward on what Partnero holds is paid and the amount
  due differs: a person settles it, the bridge never takes a paid reward back;
- ``wrong_partner``: Partnero's transaction names another partner than the payment's
  (its own referral, or the one the ledger fixed with its first transaction);
- ``extra``: Partnero holds a transaction the ledger shows the bridge created, for a
  payment whose target is now nothing (refunded, cancelled, deleted since);
- ``wrong_amount``: both hold something and the amounts (or currencies) differ, or more
  than one transaction is live for the payment;
- ``ok``: they agree (nothing due and nothing held included).

Only ``missing``, ``wrong_amount`` and ``extra`` are healed by ``--apply`` (:data:`HEALABLE`);
the others are reported only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from partnero_bridge.money import amount_text, money_text

if TYPE_CHECKING:
    from partnero_bridge.decision import Target
    from partnero_bridge.ledger.records import CommissionRecord

# The prefixes of every transaction key the bridge makes (``stripe_<id>``,
# ``ecwid_<store>_<order>``, and the ``_rN`` suffixes the ledger records for re-creations).
NAMESPACE = ("stripe_", "ecwid_")


class FindingKind(StrEnum):
    """A finding's kind (the report's and the log lines' ``kind``; see the module docstring)."""

    OK = "ok"
    MISSING = "missing"
    WRONG_AMOUNT = "wrong_amount"
    EXTRA = "extra"
    ADJUSTMENT_NEEDED = "adjustment_needed"
    WRONG_PARTNER = "wrong_partner"
    NOT_REFERRED = "not_referred"
    UNDECIDABLE = "undecidable"


# What ``--apply`` heals through the normal path; also what the drift metrics count.
HEALABLE = frozenset({FindingKind.MISSING, FindingKind.WRONG_AMOUNT, FindingKind.EXTRA})
# Report order: the healable kinds first, then the report-only ones, ``ok`` last.
KIND_ORDER = (
    FindingKind.MISSING,
    FindingKind.WRONG_AMOUNT,
    FindingKind.EXTRA,
    FindingKind.ADJUSTMENT_NEEDED,
    FindingKind.WRONG_PARTNER,
    FindingKind.NOT_REFERRED,
    FindingKind.UNDECIDABLE,
    FindingKind.OK,
)


def in_namespace(transaction_key: str) -> bool:
    """Whether a transaction key is the bridge's own (never touch any other)."""
    return transaction_key.startswith(NAMESPACE)


@dataclass(frozen=True)
class Held:
    """What Partnero answered for one transaction key (``GET /v1/transactions/{key}``)."""

    transaction_key: str
    amount: Decimal | None  # major units; None: nothing live (404, deleted, archived)
    currency: str | None = None  # ``amount_units`` when Partnero gives one
    partner_key: str | None = None  # the transaction's partner when Partnero gives it
    reward_paid: bool = False
    error: str = ""  # Partnero could not be asked


@dataclass(frozen=True)
class Referral:
    """Whether Partnero knows the payment's customer, and since when (asked only for a
    payment without a partner key of its own, when something is due and nothing held)."""

    customer_known: bool
    referred_at: int | None = None  # Unix seconds Partnero created the customer


@dataclass(frozen=True)
class Evidence:
    """Everything known about one payment, gathered by a source's reader (see module doc)."""

    ledger_key: str
    source_id: str  # the payment as the source names it: ``in_...``, ``pi_...``, ``1003:K8X``
    target: Target | None  # None only with ``error``
    error: str = ""  # why the source could not be read or decided
    record: CommissionRecord | None = None
    held: tuple[Held, ...] = ()
    referral: Referral | None = None
    created: int | None = None  # the payment's time at the source, Unix seconds
    signup_wait_seconds: int = 900


@dataclass(frozen=True)
class Finding:
    """One payment's comparison: its kind, and the money in its currency (major units)."""

    kind: FindingKind
    ledger_key: str
    source_id: str
    transaction_key: str
    currency: str
    due: Decimal | None  # what the source's state says Partnero should hold
    held: Decimal | None  # what Partnero holds (live transactions, summed)
    ledger_holds: Decimal | None  # what the ledger says Partnero holds
    detail: str
    created: int | None = None
    partner_key: str | None = None
    healing: str = ""  # "queued" once --apply sent the payment to be decided again
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def difference(self) -> Decimal:
        """``due - held`` (nothing counts 0): what Partnero is short (negative: over)."""
        return (self.due or Decimal(0)) - (self.held or Decimal(0))

    def row(self) -> dict[str, Any]:
        """The finding as JSON-ready text and numbers (Decimal as text)."""
        return {
            "kind": self.kind.value,
            "source_id": self.source_id,
            "ledger_key": self.ledger_key,
            "transaction_key": self.transaction_key,
            "currency": self.currency,
            "due": _text(self.due, self.currency),
            "held": _text(self.held, self.currency),
            "ledger_holds": _text(self.ledger_holds, self.currency),
            "difference": amount_text(self.difference, self.currency),
            "partner_key": self.partner_key,
            "created": self.created,
            "detail": self.detail,
            "healing": self.healing,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Finding:
        return cls(
            kind=FindingKind(row["kind"]),
            ledger_key=row["ledger_key"],
            source_id=row["source_id"],
            transaction_key=row["transaction_key"],
            currency=row["currency"],
            due=_decimal(row.get("due")),
            held=_decimal(row.get("held")),
            ledger_holds=_decimal(row.get("ledger_holds")),
            detail=row.get("detail") or "",
            created=row.get("created"),
            partner_key=row.get("partner_key"),
            healing=row.get("healing") or "",
        )


def _text(amount: Decimal | None, currency: str = "") -> str | None:
    return None if amount is None else amount_text(amount, currency)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _date(seconds: int | None) -> str:
    if seconds is None:
        return "an unknown date"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def needs_referral(evidence: Evidence) -> bool:
    """Whether :func:`compare` needs to know if Partnero knows the customer (and since
    when): something is due, Partnero holds nothing, the payment names no partner and
    no transaction of the ledger fixed who it belongs to. Pure."""
    target = evidence.target
    if evidence.error or target is None or target.amount is None or target.customer_key is None:
        return False
    if target.partner_key or any(h.amount is not None or h.error for h in evidence.held):
        return False
    record = evidence.record
    return not (record is not None and record.identity_fixed)


def _not_referred_because(evidence: Evidence, target: Target) -> str | None:
    """Why a due commission has nobody to go to (None: it has), as the webhooks decide."""
    record = evidence.record
    if (
        record is not None
        and record.commission_state == "not_referred"
        and record.reason == "invalid_partner"
        and record.partner_key == target.partner_key
    ):
        return f"Partnero refused the partner key {target.partner_key}"
    if target.partner_key or (record is not None and record.identity_fixed):
        return None
    referral = evidence.referral
    if referral is None:
        return "whether Partnero knows the customer was not asked"
    if not referral.customer_known:
        return "no partner key and Partnero does not know the customer"
    if referral.referred_at is None:
        return "Partnero knows the customer but not since when: the referral may postdate it"
    created = evidence.created
    if created is not None and referral.referred_at > created + evidence.signup_wait_seconds:
        return (
            f"the customer was referred {_date(referral.referred_at)}, after the payment "
            f"({_date(created)})"
        )
    return None


@dataclass(frozen=True)
class _Sides:
    """One decided payment's two sides: what is due and what Partnero holds live."""

    evidence: Evidence
    target: Target
    live: tuple[Held, ...]  # Partnero's live transactions for the payment
    held: Decimal | None  # their amounts summed; None: nothing live
    due: Decimal | None  # None: nothing due, or nobody to credit it to
    currency: str
    why: str  # the source's reason, as the detail quotes it

    def money(self, amount: Decimal | None) -> str:
        return money_text(amount, self.currency)


def compare(evidence: Evidence) -> Finding:
    """One payment's kind and money (see the module docstring for the rules). Pure."""
    target, record = evidence.target, evidence.record
    live = tuple(h for h in evidence.held if h.amount is not None and not h.error)
    held = sum((h.amount for h in live if h.amount is not None), Decimal(0)) if live else None
    due = target.amount if target is not None and target.customer_key is not None else None
    kind, detail = _unreadable(evidence) or _decided(evidence, live, held, due)
    # A sale nobody can be credited with still shows its money.
    shown_due = target.amount if kind is FindingKind.NOT_REFERRED and target is not None else due
    return Finding(
        kind=kind,
        ledger_key=evidence.ledger_key,
        source_id=evidence.source_id,
        transaction_key=live[0].transaction_key if len(live) == 1 else _base_key(evidence),
        currency=_currency(evidence),
        due=shown_due,
        held=held,
        ledger_holds=record.holds if record is not None else None,
        detail=detail,
        created=evidence.created,
        partner_key=target.partner_key if target is not None else None,
        # Not in the row: a backfill asks Partnero about the customer (cut-over check).
        extra={"customer_key": target.customer_key} if target is not None else {},
    )


def _currency(evidence: Evidence) -> str:
    """The target's currency, else the ledger's (an undecided payment), else none."""
    if evidence.target is not None and evidence.target.currency:
        return evidence.target.currency
    record = evidence.record
    return record.currency if record is not None and record.currency else ""


def _base_key(evidence: Evidence) -> str:
    """The payment's own transaction key (the target's, else the ledger's)."""
    if evidence.target is not None:
        return evidence.target.transaction_key
    record = evidence.record
    return record.transaction_key if record is not None and record.transaction_key else ""


def _unreadable(evidence: Evidence) -> tuple[FindingKind, str] | None:
    """``undecidable`` when the source was not decided or Partnero could not be asked."""
    if evidence.error or evidence.target is None:
        return FindingKind.UNDECIDABLE, evidence.error or "the source was not decided"
    failed = [h for h in evidence.held if h.error]
    if failed:
        return (
            FindingKind.UNDECIDABLE,
            f"Partnero could not be asked for {failed[0].transaction_key}: {failed[0].error}",
        )
    return None


def _decided(
    evidence: Evidence, live: tuple[Held, ...], held: Decimal | None, due: Decimal | None
) -> tuple[FindingKind, str]:
    target = evidence.target
    assert target is not None  # _unreadable answered for an undecided payment
    why = target.reason if target.detail == target.reason else f"{target.reason}: {target.detail}"
    sides = _Sides(evidence, target, live, held, due, _currency(evidence), why)
    if held is None:
        return _nothing_held(sides)
    return _credited(sides) or _held_against_due(sides)


def _nothing_held(sides: _Sides) -> tuple[FindingKind, str]:
    """Partnero holds nothing: ``ok`` when nothing is due, else missing or not referred."""
    target, due = sides.target, sides.due
    if due is None and target.amount is not None:
        return FindingKind.NOT_REFERRED, "the sale names no partner and no customer"
    if due is None:
        return FindingKind.OK, f"nothing due ({sides.why}) and nothing held"
    because = _not_referred_because(sides.evidence, target)
    if because is not None:
        return FindingKind.NOT_REFERRED, because
    return FindingKind.MISSING, f"{sides.money(due)} due ({sides.why}); Partnero holds nothing"


def _credited(sides: _Sides) -> tuple[FindingKind, str] | None:
    """What Partnero holds cannot be healed by the bridge: its reward is paid, it credits
    another partner, or the ledger never recorded it (None: none of these)."""
    live, held, due, target = sides.live, sides.held, sides.due, sides.target
    if any(h.reward_paid for h in live) and held != due:
        return (
            FindingKind.ADJUSTMENT_NEEDED,
            f"the reward on {sides.money(held)} is paid; {sides.money(due)} is due "
            f"({sides.why}): adjust by hand",
        )
    partners = {h.partner_key for h in live if h.partner_key}
    if target.partner_key and partners and partners != {target.partner_key}:
        return (
            FindingKind.WRONG_PARTNER,
            f"Partnero credits {', '.join(sorted(partners))}; the payment's partner is "
            f"{target.partner_key}",
        )
    record = sides.evidence.record
    if due is None and not (record is not None and record.identity_fixed):
        return (
            FindingKind.UNDECIDABLE,
            f"Partnero holds {sides.money(held)} under the bridge's key but the ledger "
            "never recorded it (an earlier release or someone else made it): left alone",
        )
    return None


def _held_against_due(sides: _Sides) -> tuple[FindingKind, str]:
    """Partnero holds what the bridge made: extra, a wrong amount, or ``ok``."""
    live, held, due, why = sides.live, sides.held, sides.due, sides.why
    if due is None:
        return FindingKind.EXTRA, f"Partnero holds {sides.money(held)}; nothing is due now ({why})"
    currencies = {h.currency.upper() for h in live if h.currency}
    if currencies and currencies != {sides.currency.upper()}:
        return (
            FindingKind.WRONG_AMOUNT,
            f"Partnero holds {amount_text(held or Decimal(0), sides.currency)} in "
            f"{', '.join(sorted(currencies))}; {sides.money(due)} is due ({why})",
        )
    if held != due:
        return (
            FindingKind.WRONG_AMOUNT,
            f"Partnero holds {sides.money(held)}; {sides.money(due)} is due ({why})",
        )
    if len(live) > 1:
        return (
            FindingKind.WRONG_AMOUNT,
            f"{len(live)} live transactions for one payment: "
            + ", ".join(h.transaction_key for h in live),
        )
    return FindingKind.OK, f"Partnero holds {sides.money(held)}, as due ({why})"


# -- totals -----------------------------------------------------------------------------------


@dataclass
class Totals:
    """One kind's money in one currency: payments, and sums in major units."""

    count: int = 0
    due: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    difference: Decimal = Decimal(0)

    def add(self, finding: Finding) -> None:
        self.count += 1
        self.due += finding.due or Decimal(0)
        self.held += finding.held or Decimal(0)
        self.difference += finding.difference

    def to_json(self, currency: str = "") -> dict[str, Any]:
        return {
            "count": self.count,
            "due": amount_text(self.due, currency),
            "held": amount_text(self.held, currency),
            "difference": amount_text(self.difference, currency),
        }


def totals(findings: Iterable[Finding]) -> dict[FindingKind, dict[str, Totals]]:
    """Per kind (in :data:`KIND_ORDER`) and currency (sorted): counts and money sums."""
    found: dict[FindingKind, dict[str, Totals]] = {}
    for finding in findings:
        found.setdefault(finding.kind, {}).setdefault(finding.currency, Totals()).add(finding)
    return {kind: dict(sorted(found[kind].items())) for kind in KIND_ORDER if kind in found}
