"""Exactly one Partnero transaction per order or payment, whatever arrives how often.

The reconciler makes Partnero hold what the source says is due for one ledger key:
claim the ledger item, read what Partnero holds (the ledger's word, or Partnero's own
when the ledger may be behind), take the pure decision (``decision.py``), send only the
difference, record the result. Partnero does not enforce unique transaction keys, so
this is the only guard against paying a commission twice.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from partnero_bridge.decision import (
    Commission,
    Referral,
    Step,
    Target,
    currency_problem,
    guard_paid_out,
    next_step,
    referral,
    stable_identity,
    transaction_request,
)
from partnero_bridge.envelope import Outcome, OutcomeStatus
from partnero_bridge.errors import DeliveryError, NotYetKnown, PermanentError, RetryableError
from partnero_bridge.ledger.records import Adjustment, CommissionRecord, HistoryEntry, Recheck
from partnero_bridge.money import amount_text, money_text
from partnero_bridge.observability import logger, mask_key
from partnero_bridge.partnero import (
    AnswerMeaning,
    Holding,
    PartneroAnswer,
    PartneroClient,
    read_holding,
)

if TYPE_CHECKING:
    from partnero_bridge.ledger.store import Claim, Ledger

# A re-created transaction whose key Partnero refuses as taken gets the next suffix.
MAX_KEY_SUFFIX = 9


@dataclass(frozen=True)
class Plan:
    """What the source says, decided knowing the ledger's previous record."""

    target: Target
    aliases: tuple[str, ...] = ()  # other ledger keys that should point at this one
    recheck: Recheck | None = None  # how to decide this sale again after a sign-up


Planner = Callable[[CommissionRecord | None], Plan]


# The event type of a sign-up's re-check of a not-referred sale, in a payment's history.
RECHECK_EVENT = "recheck"
# The event type of a reconciliation's re-check (``partnero-bridge reconcile --apply``), and
# the envelope meta that marks one.
RECONCILE_EVENT = "reconcile"


# The history's ``action`` of the steps that change Partnero (the first word of their text).
ACTIONS = {Step.CREATE: "created", Step.REPLACE: "replaced", Step.DELETE: "reversed"}


def outcome_text(
    step: Step,
    held: Decimal | None,
    due: Decimal | None,
    currency: str,
    why: str,
    held_currency: str = "",
) -> str:
    """What a step did to Partnero, for a person and the payment's history.

    ``held``: what Partnero held before the step (in ``held_currency`` when that differs);
    ``due``: what it should hold; ``why``: the source's state (the target's detail).
    Amounts with the currency's decimals: ``created 19.99 USD: paid``, ``replaced 19.99
    with 14.99 USD: ...``, ``reversed 14.99 USD: ...`` (deleted), ``...; Partnero holds
    14.99 USD`` (kept, or nothing to do), and the adjustment a paid reward needs. The
    verbs are the history's actions (``ACTIONS``).
    """
    if step is Step.CREATE:
        return f"created {money_text(due, currency)}: {why}"
    if step is Step.REPLACE:
        if held_currency and held_currency != currency:
            before = money_text(held, held_currency)
        else:  # one currency, said once, after the new amount
            before = amount_text(held, currency) if held is not None else "nothing"
        return f"replaced {before} with {money_text(due, currency)}: {why}"
    if step is Step.DELETE:
        return f"reversed {money_text(held, currency)}: {why}"
    if step is Step.ADJUST:
        return (
            f"Partnero holds {money_text(held, currency)} with a paid reward; "
            f"{money_text(due, currency)} is due ({why}): adjust by hand"
        )
    return f"{why}; Partnero holds {money_text(held, currency)}"


@dataclass(frozen=True)
class Delivery:
    """The delivery being processed: its id, when the bridge received it, and what it was
    (a Stripe event type, an Ecwid webhook's eventType, RECHECK_EVENT or RECONCILE_EVENT)."""

    delivery_id: str
    received_at: datetime
    event_type: str = ""


@dataclass(frozen=True)
class ReconcileRules:
    signup_wait_seconds: float = 900
    program_currency: str = ""
    converts_currencies: bool = False


class AwaitingSignup(NotYetKnown):
    """A sale for a customer Partnero does not know yet: its sign-up may be on the way."""

    kind = "awaiting_signup"


@dataclass
class _Attempt:
    """One claim being carried out; ``sent`` once Partnero may have changed."""

    claim: Claim
    plan: Plan
    target: Target
    delivery: Delivery
    holding: Holding | None = None
    asked_partnero: bool = False
    sent: bool = False
    record: CommissionRecord = field(init=False)

    def __post_init__(self) -> None:
        previous = self.claim.previous
        self.record = previous or CommissionRecord(pk=self.claim.ledger_key)

    @property
    def previous(self) -> CommissionRecord | None:
        return self.claim.previous


def _adopt_unrecorded(attempt: _Attempt) -> None:
    """Partnero holds a transaction under this payment's key that the ledger never
    recorded (an earlier release sent it): it is this payment's, keep its identity."""
    target = attempt.target
    attempt.record = attempt.record.model_copy(
        update={
            "transaction_key": target.transaction_key,
            "transaction_keys": [target.transaction_key],
            "customer_key": target.customer_key,
            "partner_key": target.partner_key,
            "created_at_epoch": target.created_at,
        }
    )


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        partnero: PartneroClient,
        rules: ReconcileRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self._partnero = partnero
        self._rules = rules
        self._clock = clock

    def apply(self, ledger_key: str, planner: Planner | Plan, delivery: Delivery) -> Outcome:
        """Make Partnero hold what the plan's target says for ``ledger_key``.

        ``planner`` may be a function of the ledger's previous record; it is called once the
        item is claimed, so a source read inside it (Stripe) is read in turn.

        Raises RetryableError (Partnero or DynamoDB transient, another attempt holding
        the item, a sale waiting for its sign-up) and PermanentError (undecidable).
        """
        claim = self.ledger.claim(ledger_key, uuid.uuid4().hex, self._clock())
        attempt: _Attempt | None = None
        try:
            plan = planner(claim.previous) if callable(planner) else planner
            target = stable_identity(plan.target, claim.previous)
            attempt = _Attempt(claim, plan, target, delivery)
            return self._carry_out(attempt)
        except Exception as exc:
            # Partnero may have acted: the next attempt must look before it sends.
            self.ledger.release(
                claim,
                needs_check=attempt is not None and attempt.sent,
                entry=self._failure_entry(delivery, exc),
            )
            raise

    # -- the steps ------------------------------------------------------------------------
    def _carry_out(self, attempt: _Attempt) -> Outcome:
        target = attempt.target
        key = target.transaction_key
        due = target.amount if target.customer_key is not None else None
        attempt.holding = self._held(attempt, key, due)
        held = attempt.holding.amount if attempt.holding else None
        if held is not None and not attempt.record.identity_fixed:
            _adopt_unrecorded(attempt)
        step = self._step(attempt, held, due)
        if step is Step.NOTHING:
            return self._nothing_due(attempt)
        if step is Step.KEEP:
            return self._finish(attempt, "recorded", OutcomeStatus.ALREADY_RECORDED, held)
        if step is Step.ADJUST:
            return self._adjust(attempt, held or Decimal(0))
        # What Partnero held before the change, for its text: its own word once asked.
        if attempt.holding is not None:
            held = attempt.holding.amount
        if step is Step.DELETE:
            self._delete(attempt, key)
            text = outcome_text(step, held, None, target.currency, target.detail)
            return self._finish(attempt, "absent", OutcomeStatus.SENT, None, detail=text, step=step)
        return self._send(attempt, step, held)

    def _step(self, attempt: _Attempt, held: Decimal | None, due: Decimal | None) -> Step:
        """The next step; Partnero's rewards are read before anything is taken back."""
        step = next_step(held, due)
        recorded_currency = attempt.record.currency
        if step is Step.KEEP and recorded_currency and recorded_currency != attempt.target.currency:
            step = Step.REPLACE  # the same figure in another currency is another amount
        if step in (Step.DELETE, Step.REPLACE) and not attempt.asked_partnero:
            # Before taking anything back, read the rewards: a paid one is never deleted.
            transaction = self._partnero.get_transaction(attempt.target.transaction_key)
            attempt.holding = read_holding(transaction)
            attempt.asked_partnero = True
        return guard_paid_out(step, bool(attempt.holding and attempt.holding.reward_paid))

    def _send(self, attempt: _Attempt, step: Step, held: Decimal | None) -> Outcome:
        """CREATE (once the sale is found referred) or REPLACE (delete, then create)."""
        commission = attempt.target.commission()
        assert commission is not None  # CREATE and REPLACE have an amount and a customer
        problem = currency_problem(
            commission.currency, self._rules.program_currency, self._rules.converts_currencies
        )
        if problem:
            raise PermanentError(problem)
        if step is Step.CREATE:
            not_sent = self._referral(attempt, commission)
            if not_sent is not None:
                return not_sent
        else:
            self._delete(attempt, commission.transaction_key)
        return self._create(attempt, commission, replaced=held)

    def _held(self, attempt: _Attempt, key: str, due: Decimal | None) -> Holding | None:
        """What Partnero holds under ``key``: the ledger's word, or Partnero's when unsure."""
        previous = attempt.previous
        unrecorded = due is not None and not self._ledger_knows(previous, attempt.target)
        if attempt.claim.may_have_sent or unrecorded:
            attempt.asked_partnero = True
            return read_holding(self._partnero.get_transaction(key))
        held = previous.holds if previous is not None else None
        return Holding(held, reward_paid=False) if held is not None else None

    def _ledger_knows(self, previous: CommissionRecord | None, target: Target) -> bool:
        """Whether the ledger's record is the whole truth before creating a transaction."""
        if previous is not None and previous.updated_at is not None:
            return True
        # No record. An earlier release may have sent this payment under this key before
        # the ledger knew it (or under a key taken from a webhook body): ask Partnero for
        # payments older than this release's first ledger write.
        return target.created_at is not None and target.created_at >= self.ledger.since()

    def _referral(self, attempt: _Attempt, commission: Commission) -> Outcome | None:
        """None when the sale may be sent; else the not-referred outcome (or a wait)."""
        previous = attempt.previous
        if (
            previous is not None
            and previous.commission_state == "not_referred"
            and previous.reason == "invalid_partner"
            and previous.partner_key == commission.partner_key
        ):
            return self._not_referred(attempt, commission, "invalid_partner", "")
        customer_known = self._customer_known(commission)
        already_waited = previous is not None and previous.reason == "unknown_customer"
        waited = (
            math.inf if already_waited else self._clock() - attempt.delivery.received_at.timestamp()
        )
        verdict = referral(
            commission.partner_key, customer_known, waited, self._rules.signup_wait_seconds
        )
        if verdict is Referral.WAIT_FOR_SIGNUP:
            raise AwaitingSignup(
                "no partner key and Partnero does not know the customer yet: waiting for "
                "its sign-up",
                retry_after=self._rules.signup_wait_seconds - waited,
            )
        if verdict is Referral.NOT_REFERRED:
            return self._unknown_customer(attempt, commission)
        return None

    def _customer_known(self, commission: Commission) -> bool | None:
        """Whether Partnero knows the customer (the ledger's sign-up first); None: a sale
        with a partner key of its own, where it does not matter."""
        if commission.partner_key:
            return None
        signed_up = self.ledger.customer(commission.customer_key)
        if signed_up is not None and signed_up.known_to_partnero:
            return True
        answer = self._partnero.get_customer(commission.customer_key)
        return answer.meaning == AnswerMeaning.OK

    def _unknown_customer(self, attempt: _Attempt, commission: Commission) -> Outcome | None:
        """Not referred: the sale waits on its customer for a sign-up to re-check it (None:
        the sign-up landed meanwhile, so the sale counts after all)."""
        if attempt.plan.recheck is not None:
            customer = self.ledger.wait_for_signup(
                commission.customer_key, attempt.claim.ledger_key, attempt.plan.recheck
            )
            if customer.known_to_partnero:
                return None
        return self._not_referred(
            attempt,
            commission,
            "unknown_customer",
            "no partner key and Partnero does not know the customer",
        )

    def _create(
        self, attempt: _Attempt, commission: Commission, replaced: Decimal | None
    ) -> Outcome:
        keys_used = list(attempt.record.transaction_keys) or [commission.transaction_key]
        held_currency = attempt.record.currency or ""
        made = self._post(attempt, commission, keys_used)
        if isinstance(made, Outcome):
            return made
        if made.transaction_key not in keys_used:
            keys_used.append(made.transaction_key)
        attempt.record = attempt.record.model_copy(
            update={
                "transaction_key": made.transaction_key,
                "transaction_keys": keys_used,
                "customer_key": made.customer_key,
                "partner_key": made.partner_key,
                "currency": made.currency,
                "created_at_epoch": made.created_at,
            }
        )
        step = Step.REPLACE if replaced is not None else Step.CREATE
        text = outcome_text(
            step, replaced, made.amount, made.currency, attempt.target.detail, held_currency
        )
        return self._finish(
            attempt, "recorded", OutcomeStatus.SENT, made.amount, detail=text, step=step
        )

    def _post(
        self, attempt: _Attempt, commission: Commission, keys_used: list[str]
    ) -> Commission | Outcome:
        """Create the transaction: the commission as Partnero holds it now (under the next
        suffixed key, appended to ``keys_used``, while Partnero refuses a key as taken), or
        the not-referred outcome when Partnero refuses the partner or the customer."""
        for _ in range(MAX_KEY_SUFFIX):
            attempt.sent = True
            answer = self._partnero.create_transaction(transaction_request(commission))
            if answer.meaning == AnswerMeaning.NOT_REFERRED:
                return self._refused(attempt, commission, answer)
            if answer.meaning == AnswerMeaning.OK:
                return commission
            if answer.meaning != AnswerMeaning.DUPLICATE:
                raise RetryableError(f"unexpected answer {answer.meaning} to a transaction create")
            live = read_holding(self._partnero.get_transaction(commission.transaction_key))
            if live is not None and live.amount == commission.amount:
                # An earlier attempt created it and died before recording: it is ours.
                return commission
            if live is not None:
                self._delete(attempt, commission.transaction_key)
            # Partnero refuses the key as taken (a deleted transaction it keeps): the
            # transaction takes the next suffix, recorded so reconciling knows every key.
            suffixed = f"{keys_used[0]}_r{len(keys_used) + 1}"
            keys_used.append(suffixed)
            commission = replace(commission, transaction_key=suffixed)
        raise RetryableError("Partnero refused every suffixed transaction key")

    def _refused(
        self, attempt: _Attempt, commission: Commission, answer: PartneroAnswer
    ) -> Outcome:
        # 400 names the partner key; 422 a customer Partnero does not know.
        why = "invalid_partner" if answer.status_code == 400 else "unknown_customer"
        if why == "unknown_customer" and attempt.plan.recheck is not None:
            self.ledger.wait_for_signup(
                commission.customer_key, attempt.claim.ledger_key, attempt.plan.recheck
            )
        return self._not_referred(attempt, commission, why, answer.message)

    def _delete(self, attempt: _Attempt, key: str) -> None:
        attempt.sent = True
        answer = self._partnero.delete_transaction(key)
        if answer.meaning not in (AnswerMeaning.OK, AnswerMeaning.NOT_FOUND):
            raise RetryableError(f"unexpected answer {answer.meaning} to a delete")

    def _nothing_due(self, attempt: _Attempt) -> Outcome:
        target = attempt.target
        if target.amount is not None and target.customer_key is None:
            # Money, but nobody to credit it to: neither a partner key nor a customer key.
            return self._finish(
                attempt,
                "not_referred",
                OutcomeStatus.NOT_REFERRED,
                None,
                reason="no_customer_key",
                detail="the sale names no partner and no customer",
            )
        previous = attempt.previous
        reversed_before = previous is not None and previous.identity_fixed
        status = OutcomeStatus.ALREADY_RECORDED if reversed_before else OutcomeStatus.IGNORED
        state = "absent"
        if previous is not None and previous.commission_state == "not_referred":
            state = "not_referred"
        return self._finish(attempt, state, status, None)

    def _not_referred(
        self, attempt: _Attempt, commission: Commission, reason: str, message: str
    ) -> Outcome:
        if not attempt.record.identity_fixed:
            attempt.record = attempt.record.model_copy(
                update={
                    "transaction_key": commission.transaction_key,
                    "customer_key": commission.customer_key,
                    "partner_key": commission.partner_key,
                    "currency": commission.currency,
                }
            )
        detail = f"not referred ({reason.replace('_', ' ')}){': ' + message if message else ''}"
        return self._finish(
            attempt,
            "not_referred",
            OutcomeStatus.NOT_REFERRED,
            None,
            reason=reason,
            detail=detail,
        )

    def _adjust(self, attempt: _Attempt, held: Decimal) -> Outcome:
        target = attempt.target
        due = target.amount if target.customer_key is not None else None
        adjustment = Adjustment(
            at=int(self._clock()),
            transaction_key=target.transaction_key,
            held=held,
            target=due or Decimal(0),
            currency=target.currency,
            reason=target.reason,
        )
        logger.warning(
            "commission needs a manual adjustment: the partner's reward is already paid",
            extra={
                "ledger_key": mask_key(attempt.claim.ledger_key),
                "transaction_key": target.transaction_key,
                "held": str(held),
                "due": str(adjustment.target),
                "currency": target.currency,
            },
        )
        known = attempt.record.adjustments
        same = known and known[-1].model_copy(update={"at": adjustment.at}) == adjustment
        # A redelivery of the same change records nothing new.
        adjustments = known if same else [*known, adjustment][-20:]
        attempt.record = attempt.record.model_copy(update={"adjustments": adjustments})
        return self._finish(
            attempt,
            "recorded",
            OutcomeStatus.ADJUSTMENT_NEEDED,
            held,
            reason="reward_paid",
            detail=outcome_text(Step.ADJUST, held, due, target.currency, target.reason),
        )

    def _finish(
        self,
        attempt: _Attempt,
        state: str,
        status: OutcomeStatus,
        holds: Decimal | None,
        *,
        reason: str = "",
        detail: str = "",
        step: Step | None = None,
    ) -> Outcome:
        """Record the outcome; ``step``: the change made to Partnero, if any (its action
        goes to the history); ``detail`` defaults to what Partnero holds now."""
        target, plan = attempt.target, attempt.plan
        reason = reason or target.reason
        detail = detail or outcome_text(Step.KEEP, holds, holds, target.currency, target.detail)
        update: dict[str, object] = {
            "commission_state": state,
            "amount": holds,
            "reason": reason,
            "detail": detail[:500],
            "last_delivery_id": attempt.delivery.delivery_id,
            "aliases": sorted({*attempt.record.aliases, *plan.aliases}),
        }
        if holds is not None or attempt.record.currency is None:
            update["currency"] = target.currency
        if plan.recheck is not None:
            update["recheck"] = plan.recheck
        action = ACTIONS.get(step, "") if step is not None else ""
        entry = self._entry(
            attempt.delivery,
            outcome=status.value,
            reason=reason,
            detail=detail,
            action=action,
            amount=holds if action in ("created", "replaced") else None,
            currency=target.currency if action else None,
        )
        # Written with the new state, in the same conditional write.
        update["history"] = self.ledger.history_with(attempt.record, entry)
        record = attempt.record.model_copy(update=update)
        for other in self.ledger.record(attempt.claim, record):
            self._retire(other, attempt)
        return Outcome(
            status=status, detail=detail, reason=reason, ledger_key=attempt.claim.ledger_key
        )

    # -- the payment's history --------------------------------------------------------------
    def _entry(self, delivery: Delivery, **values: object) -> HistoryEntry:
        return HistoryEntry.model_validate(
            {
                "at": datetime.fromtimestamp(self._clock(), UTC),
                "delivery_id": delivery.delivery_id,
                "event_type": delivery.event_type,
                **values,
            }
        )

    def _failure_entry(self, delivery: Delivery, error: Exception) -> HistoryEntry:
        """A failed attempt: "retrying" (transient, or waiting for a sign-up) or "failed"
        (permanent: dead-lettered), with the failure's kind and reason."""
        if isinstance(error, DeliveryError):
            outcome = "failed" if isinstance(error, PermanentError) else "retrying"
            return self._entry(delivery, outcome=outcome, reason=error.kind, detail=error.reason)
        return self._entry(
            delivery, outcome="retrying", reason="unexpected", detail=type(error).__name__
        )

    def _retire(self, ledger_key: str, attempt: _Attempt) -> None:
        """Take back what ``ledger_key`` holds: it is this payment, recorded under another
        id before the bridge knew (a PaymentIntent counted on its own, then found to pay
        an invoice). Without this, one payment would earn twice."""
        found = self.ledger.commission(ledger_key)
        if not isinstance(found, CommissionRecord) or not found.transaction_key:
            return
        into = attempt.claim.ledger_key
        target = Target(
            transaction_key=found.transaction_key,
            amount=None,
            currency=found.currency or attempt.target.currency,
            reason="counted_elsewhere",
            detail=f"the same payment is recorded as {into}",
        )
        logger.warning(
            "a payment recorded under two ids: the other one is taken back",
            extra={"ledger_key": mask_key(into), "retired": mask_key(ledger_key)},
        )
        self.apply(ledger_key, Plan(target), attempt.delivery)
