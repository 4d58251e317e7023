"""Processing side of sign-ups: one queued sign-up -> at most one Partnero customer.

A sale can arrive before its customer's sign-up (a checkout webhook outruns the form's
request, or the form is sent later). Such a sale, with no partner key of its own, is
"not referred" once its wait is over, and remembered on the customer's ledger item; when
the sign-up then creates the customer, its not-referred sales of the last
``BRIDGE_RETRIGGER_DAYS`` days are sent back to their source's work queue to be decided
again.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope, Source
from partnero_bridge.errors import PermanentError, RetryableError
from partnero_bridge.ledger import keys
from partnero_bridge.observability import logger, mask_key, metrics
from partnero_bridge.partnero import AnswerMeaning
from partnero_bridge.queues import send_to_queue
from partnero_bridge.ratelimit import RateLimitUnavailable
from partnero_bridge.signup.mapping import customer_request
from partnero_bridge.signup.models import SignupDelivery

if TYPE_CHECKING:
    from partnero_bridge.ledger.records import CustomerRecord, Recheck
    from partnero_bridge.runtime import Runtime

# Partnero's answer -> (ledger status, outcome)
_RESULTS = {
    AnswerMeaning.OK: ("created", OutcomeStatus.SENT),
    AnswerMeaning.DUPLICATE: ("exists", OutcomeStatus.ALREADY_RECORDED),
    AnswerMeaning.NOT_REFERRED: ("not_referred", OutcomeStatus.NOT_REFERRED),
}


class PartnerBudgetExceeded(RetryableError):
    """This partner key's sign-ups of the hour are used up: processed next hour.

    Retried like any transient failure, so the sign-up waits on its queue (within the
    retry window) instead of being refused: nobody can silence a partner's referrals by
    flooding its key, only slow them down.
    """

    kind = "partner_budget"


# The limit of sign-ups per partner key (its counters' key prefix in the rate-limit table).
BUDGET_LIMIT = "signup-partner"
BUDGET_SECONDS = 3600
# Postponed sign-ups come back spread over this many seconds after the hour turns,
# rather than all at once.
_BUDGET_SPREAD_SECONDS = 60


def process_signup(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    """One queued sign-up: the Partnero customer it creates, or why none.

    Raises :class:`PartnerBudgetExceeded` (retryable) when an unsigned sign-up's partner
    key is over ``SIGNUP_PARTNER_BUDGET_PER_HOUR``.
    """
    delivery = envelope.payload_as(SignupDelivery)
    ledger_key = keys.customer(delivery.customer_key)
    logger.append_keys(ledger_key=mask_key(ledger_key))

    signed = envelope.meta.get("trusted") == "True"
    if not signed and runtime.settings.signup_sales_claimed_by == "signed":
        # Not a referral in this mode: accepted at the door, counted here, never sent.
        return Outcome(
            status=OutcomeStatus.NOT_REFERRED,
            detail="unsigned sign-up; SIGNUP_SALES_CLAIMED_BY=signed sends only signed ones",
            reason="unsigned_signup",
            ledger_key=ledger_key,
        )
    if not signed:
        spend_partner_budget(delivery.partner_key, runtime)

    answer = runtime.partnero.create_customer(customer_request(delivery))
    if answer.meaning not in _RESULTS:
        raise PermanentError(f"unexpected Partnero answer {answer.meaning} to a customer create")
    ledger_status, outcome = _RESULTS[answer.meaning]
    record = runtime.ledger.record_customer(
        delivery.customer_key,
        ledger_status,
        delivery.partner_key,
        envelope.delivery_id,
        answer.message,
    )
    if record.known_to_partnero:
        _recheck_waiting_sales(record, delivery.customer_key, envelope.delivery_id, runtime)
    return Outcome(
        status=outcome,
        detail=answer.message or ledger_status,
        reason=ledger_status,
        ledger_key=ledger_key,
    )


def spend_partner_budget(partner_key: str, runtime: Runtime, now: float | None = None) -> None:
    """Count one sign-up against its partner key's budget of the hour.

    Raises :class:`PartnerBudgetExceeded` (retry after the hour turns) past
    ``SIGNUP_PARTNER_BUDGET_PER_HOUR``; 0 means no budget. When the counter store fails
    the sign-up goes ahead (counted as ``RateLimitUnavailable``): a budget protects
    Partnero's rate limit, it must never hold up real sign-ups by itself.
    """
    budget = runtime.settings.signup_partner_budget_per_hour
    if budget == 0:
        return
    now = time.time() if now is None else now
    try:
        count = runtime.rate_limits.hit(BUDGET_LIMIT, partner_key, BUDGET_SECONDS, now)
    except RateLimitUnavailable as exc:
        logger.warning("partner budget unavailable: sign-up processed", extra={"error": str(exc)})
        metrics.add_metric(name="RateLimitUnavailable", unit=MetricUnit.Count, value=1)
        return
    if count.hits <= budget:
        return
    metrics.add_metric(name="PartnerBudgetExceeded", unit=MetricUnit.Count, value=1)
    spread = random.uniform(0, _BUDGET_SPREAD_SECONDS)  # noqa: S311 - jitter, not a secret
    wait = count.window.seconds_left(now) + spread
    raise PartnerBudgetExceeded(
        f"partner key {partner_key} is over its budget of {budget} sign-ups an hour; "
        "processed next hour",
        retry_after=wait,
    )


def _recheck_waiting_sales(
    record: CustomerRecord, customer_key: str, delivery_id: str, runtime: Runtime
) -> None:
    """Send this customer's recent not-referred sales back to be decided again."""
    if not record.not_referred_sales:
        return
    oldest = time.time() - runtime.settings.retrigger_days * 86400
    sent: list[str] = []
    for ledger_key, recheck in record.not_referred_sales.items():
        if recheck.at >= oldest:
            _send_recheck(ledger_key, recheck, delivery_id, runtime)
        sent.append(ledger_key)
    runtime.ledger.forget_waiting_sales(customer_key, sent)
    logger.info("not-referred sales sent to be decided again", extra={"count": len(sent)})


def _send_recheck(ledger_key: str, recheck: Recheck, delivery_id: str, runtime: Runtime) -> None:
    from partnero_bridge.ecwid.process import recheck_webhook
    from partnero_bridge.stripe.process import recheck_event

    digest = hashlib.sha256(f"{ledger_key}\x1f{delivery_id}".encode()).hexdigest()[:40]
    recheck_id = f"recheck-{digest}"
    if recheck.source == "ecwid":
        source = Source.ECWID
        queue_url = runtime.settings.ecwid_queue_url
        payload = recheck_webhook(recheck.ref["store"], recheck.ref["order"], recheck_id)
    else:
        source = Source.STRIPE
        queue_url = runtime.settings.stripe_queue_url
        payload = recheck_event(ledger_key, recheck_id)
    envelope = QueueEnvelope.new(source, recheck_id, payload, meta={"recheck": ledger_key})
    send_to_queue(runtime.sqs, queue_url, envelope)
