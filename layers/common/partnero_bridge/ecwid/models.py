"""The parts of Ecwid's webhook and order JSON the bridge reads; the rest is ignored.

Field names are Ecwid's own (camelCase), so the models read the JSON as documented.
Amounts are parsed as Decimal straight from the JSON text, never through float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ORDER_EVENTS = frozenset({"order.created", "order.updated", "order.deleted"})


class WebhookData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    orderId: str | None = None
    newPaymentStatus: str | None = None

    @field_validator("orderId", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class EcwidWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Not always a valid UUID: any non-empty string is accepted.
    eventId: str = Field(min_length=1, max_length=200)
    eventCreated: int
    storeId: int
    entityId: int | None = None
    eventType: str = Field(min_length=1, max_length=100)
    data: WebhookData | None = None

    @property
    def is_order_event(self) -> bool:
        return self.eventType in ORDER_EVENTS

    @property
    def order_id(self) -> str | None:
        """The public order id to fetch; the internal entityId only when data lacks it."""
        if self.data is not None and self.data.orderId:
            return self.data.orderId
        return str(self.entityId) if self.entityId is not None else None


class HandlingFee(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: Decimal = Decimal(0)
    valueWithoutTax: Decimal | None = None

    @property
    def without_tax(self) -> Decimal:
        return self.value if self.valueWithoutTax is None else self.valueWithoutTax


class ShippingOption(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shippingRate: Decimal = Decimal(0)
    shippingRateWithoutTax: Decimal | None = None

    @property
    def without_tax(self) -> Decimal:
        return (
            self.shippingRate
            if self.shippingRateWithoutTax is None
            else (self.shippingRateWithoutTax)
        )


class CustomSurcharge(BaseModel):
    """A surcharge the shop added (tips, packaging): ``total`` in money, after percent."""

    model_config = ConfigDict(extra="ignore")

    total: Decimal = Decimal(0)
    totalWithoutTax: Decimal | None = None

    @property
    def without_tax(self) -> Decimal:
        return self.total if self.totalWithoutTax is None else self.totalWithoutTax


class Refund(BaseModel):
    """One entry of ``refunds[]``: ``{date, source, reason, amount}``."""

    model_config = ConfigDict(extra="ignore")

    amount: Decimal = Decimal(0)


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    productId: int | str | None = None
    sku: str | None = None


class Person(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    firstName: str | None = None
    lastName: str | None = None


class OrderExtraField(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    value: Any = None


class EcwidOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    internalId: int | None = None
    paymentStatus: str
    total: Decimal
    # None when Ecwid left them out: only undecidable if the amount basis needs them.
    subtotal: Decimal | None = None
    tax: Decimal | None = None
    refundedAmount: Decimal = Decimal(0)
    refunds: list[Refund] = Field(default_factory=list)
    customSurcharges: list[CustomSurcharge] = Field(default_factory=list)
    handlingFee: HandlingFee | None = None
    shippingOption: ShippingOption | None = None
    items: list[OrderItem] = Field(default_factory=list)
    email: str | None = None
    customerId: int | str | None = None
    billingPerson: Person | None = None
    extraFields: dict[str, Any] | None = None
    orderExtraFields: list[OrderExtraField] | None = None
    createTimestamp: int | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("refundedAmount", mode="before")
    @classmethod
    def _zero_when_null(cls, value: object) -> object:
        return 0 if value is None else value

    @field_validator("refunds", "customSurcharges", "items", mode="before")
    @classmethod
    def _empty_when_null(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("handlingFee", mode="before")
    @classmethod
    def _fee(cls, value: object) -> object:
        # Tolerate a bare number as well as Ecwid's {name, value, description} object.
        return {"value": value} if isinstance(value, int | float | str) else value
