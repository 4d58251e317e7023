"""What the ledger keeps about one Stripe payment, folded from its events.

A persisted model (part of the payment's ledger record): every field round-trips, and
items written by the previous release (the same fields as a JSON string) are read too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from partnero_bridge.money import remaining_share

if TYPE_CHECKING:
    from partnero_bridge.stripe.mapping import Reversal, Sale


class PaymentFacts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amount: Decimal | None = None  # the commission basis of the sale, major units
    gross_minor: int = 0  # what was charged, minor units (the base refunds are shares of)
    currency: str | None = None
    rank: int = 0  # how much the source of ``amount`` is trusted (invoice > checkout)
    opted_out: bool = False
    charge_refunded: dict[str, int] = Field(default_factory=dict)  # charge -> cumulative
    refunds: dict[str, int] = Field(default_factory=dict)  # refund id -> minor units
    failed_refunds: list[str] = Field(default_factory=list)  # final: never counted again
    disputes: dict[str, str] = Field(default_factory=dict)  # id -> "open" or closed status

    def add_sale(self, sale: Sale, opted_out: bool) -> None:
        # A weaker source (a checkout) never overrides the amount of a stronger one (its
        # invoice), so both orders of arrival end with the same amount.
        if sale.rank >= self.rank:
            self.amount, self.gross_minor = sale.amount, sale.gross_minor
            self.currency, self.rank = sale.currency, sale.rank
        self.opted_out = self.opted_out or opted_out

    def add_reversal(self, reversal: Reversal) -> None:
        if reversal.kind == "charge_refunded":
            known = self.charge_refunded.get(reversal.object_id, 0)
            self.charge_refunded[reversal.object_id] = max(known, reversal.amount_minor)
        elif reversal.kind == "refund":
            # Events arrive in any order: once failed or canceled, a refund stays so, even
            # if an older "pending" snapshot of it comes in later.
            if not reversal.counts:
                self.refunds.pop(reversal.object_id, None)
                if reversal.object_id not in self.failed_refunds:
                    self.failed_refunds.append(reversal.object_id)
            elif reversal.object_id not in self.failed_refunds:
                self.refunds[reversal.object_id] = reversal.amount_minor
        elif reversal.dispute_status is not None and (
            # Likewise a closed dispute is final: a late "created" does not reopen it.
            reversal.dispute_status != "open" or reversal.object_id not in self.disputes
        ):
            self.disputes[reversal.object_id] = reversal.dispute_status

    @property
    def refunded_minor(self) -> int:
        # The charge's cumulative figure and the sum of single refunds describe the same
        # money: the larger one is the truth so far (either may arrive first).
        return max(sum(self.charge_refunded.values()), sum(self.refunds.values()))

    def commission_amount(self) -> Decimal | None:
        """What Partnero should hold now, or None for nothing."""
        if self.amount is None or self.currency is None or self.opted_out:
            return None
        if any(status in ("open", "lost") for status in self.disputes.values()):
            return None
        amount = self.amount
        if self.refunded_minor and self.gross_minor > 0:
            # Refunds return a share of the whole payment (tax included), so the
            # commission keeps the same share of its amount.
            amount = remaining_share(
                self.amount, Decimal(self.gross_minor), Decimal(self.refunded_minor), self.currency
            )
        return amount if amount > 0 else None
