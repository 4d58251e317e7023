"""Ecwid's side of a reconciliation: one store's orders updated, created or deleted in a
window.

Listings, in this order, each paged 100 at a time by offset:

1. the order search by update date (``updatedFrom``/``updatedTo``), the upper bound fixed
   when the run started, so an order updated during the run neither shifts the pages nor
   counts twice (the webhooks carry that update);
2. the order search by creation date (``createdFrom``/``createdTo``): orders made in the
   window and updated after it;
3. the deleted orders' history (``/orders/deleted``, kept 6 months by Ecwid).

An order listed is compared from the order as the search served it, decided by
``ecwid.mapping.decide`` with the store's currency and the ledger's fixed identity; a
deleted order's target is nothing. Each order is compared once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from partnero_bridge.decision import Target, stable_identity
from partnero_bridge.ecwid.client import EcwidClient
from partnero_bridge.ecwid.mapping import decide, transaction_key
from partnero_bridge.ecwid.models import EcwidOrder
from partnero_bridge.ecwid.process import recheck_webhook, rules
from partnero_bridge.envelope import Source
from partnero_bridge.errors import PermanentError
from partnero_bridge.ledger import keys
from partnero_bridge.reconcile.common import (
    Listed,
    ListedPage,
    SourceReader,
    Window,
    delivery_id,
)
from partnero_bridge.reconcile.compare import Evidence, Finding, compare, needs_referral

if TYPE_CHECKING:
    from partnero_bridge.ledger.records import CommissionRecord
    from partnero_bridge.runtime import Runtime

STREAMS = ("updated", "created", "deleted")


class EcwidWindow:
    """Lists a window's orders of one store and compares each (see the module docstring)."""

    streams = STREAMS

    def __init__(self, runtime: Runtime, client: EcwidClient, store: str, token: str) -> None:
        self._runtime = runtime
        self._client = client
        self._store = store
        self._token = token
        self._rules = rules(runtime)
        self._read = SourceReader(runtime)
        self.scope = f"ecwid:{store}"
        self._currency = runtime.settings.ecwid_currency.upper()

    def currency(self) -> str:
        if not self._currency:
            self._currency = self._client.currency(self._store, self._token)
        return self._currency

    # -- listing -------------------------------------------------------------------------
    def page(self, stream: str, cursor: str | None, window: Window) -> ListedPage:
        offset = int(cursor or 0)
        if stream == "deleted":
            page = self._client.deleted_orders(
                self._store,
                self._token,
                deleted_from=window.start,
                deleted_to=window.end,
                offset=offset,
            )
        else:
            page = self._client.search_orders(
                self._store,
                self._token,
                by="created" if stream == "created" else "updated",
                date_from=window.start,
                date_to=window.end,
                offset=offset,
            )
        return ListedPage(
            [Listed(stream, item) for item in page.items],
            str(page.next_offset) if page.has_more else None,
        )

    # -- comparing -------------------------------------------------------------------------
    def evaluate(self, item: Listed, first: Callable[[str], bool]) -> Finding | None:
        if item.stream == "deleted":
            return self._deleted(item, first)
        order_id = str(item.obj.get("id") or "")
        if not order_id:
            return None
        source_id = f"{self._store}:{order_id}"
        internal = item.obj.get("internalId")
        ledger_key = keys.ecwid_order(
            self._store, internal if isinstance(internal, int | str) else None, order_id
        )
        if not first(ledger_key):
            return None
        alias = keys.ecwid_order_alias(self._store, order_id)
        found_key, record = self._read.commission(ledger_key, alias)
        ledger_key = found_key or ledger_key
        try:
            order = EcwidOrder.model_validate(item.obj)
            target = self.decide(order, record)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            error = f"Ecwid order {order_id[:100]} is not in the expected shape: " + ", ".join(
                fields[:10]
            )
            return compare(Evidence(ledger_key, source_id, None, error=error, record=record))
        except PermanentError as exc:
            return compare(Evidence(ledger_key, source_id, None, error=exc.reason, record=record))
        return self._conclude(ledger_key, source_id, target, record, order.createTimestamp)

    def _deleted(self, item: Listed, first: Callable[[str], bool]) -> Finding | None:
        order_id = str(item.obj.get("orderId") or "")
        number = item.obj.get("id")
        if not order_id:
            return None
        alias = keys.ecwid_order_alias(self._store, order_id)
        candidates = [alias]
        if isinstance(number, int | str) and str(number):
            candidates.insert(0, keys.ecwid_order(self._store, number, order_id))
        found_key, record = self._read.commission(*candidates)
        ledger_key = found_key or alias
        if not first(ledger_key):
            return None
        target = self.deleted(order_id, record)
        return self._conclude(ledger_key, f"{self._store}:{order_id}", target, record, None)

    def decide(self, order: EcwidOrder, record: CommissionRecord | None) -> Target:
        """What Partnero should hold for ``order`` as Ecwid serves it: the webhooks' decision
        in the store's currency, with the identity the ledger's ``record`` fixed. Raises
        PermanentError when the order cannot be decided."""
        return stable_identity(decide(order, self._store, self.currency(), self._rules), record)

    def deleted(self, order_id: str, record: CommissionRecord | None) -> Target:
        """The target of an order Ecwid no longer has: nothing, under the key the ledger
        recorded (else the order's own)."""
        return Target(
            transaction_key=(record.transaction_key if record is not None else None)
            or transaction_key(self._store, order_id),
            amount=None,
            currency=(record.currency if record is not None else None) or self.currency(),
            reason="deleted",
            detail=f"Ecwid has no order {order_id} any more (deleted)",
        )

    def _conclude(
        self,
        ledger_key: str,
        source_id: str,
        target: Target,
        record: CommissionRecord | None,
        created: int | None,
    ) -> Finding:
        evidence = Evidence(
            ledger_key,
            source_id,
            target,
            record=record,
            held=self._read.held(record, target),
            created=created,
            signup_wait_seconds=self._runtime.settings.signup_wait_seconds,
        )
        if needs_referral(evidence):
            assert target.customer_key is not None
            evidence = replace(evidence, referral=self._read.referral(target.customer_key))
        return compare(evidence)

    # -- healing -----------------------------------------------------------------------------
    def heal(self, finding: Finding, run_id: str) -> None:
        """Mark the ledger item so the re-check asks Partnero first, then queue an
        ``order.updated`` webhook of the order on the Ecwid work queue (processing fetches
        the order again; a deleted one is reversed)."""
        self._runtime.ledger.ask_partnero_next(finding.ledger_key)
        delivery = delivery_id(run_id, finding.ledger_key)
        order_id = finding.source_id.partition(":")[2]
        self._read.queue(
            Source.ECWID, delivery, recheck_webhook(self._store, order_id, delivery), run_id
        )
