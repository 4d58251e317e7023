"""What earlier releases kept about a Stripe payment, folded from its events.

Payments are now decided from their state at Stripe, so nothing writes these any more;
the model stays so that ledger items of those releases are read (and re-written) intact.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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
