"""Processing side of sign-ups: one queued sign-up -> at most one Partnero customer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.errors import PermanentError
from partnero_bridge.ledger import CustomerRecord, customer_ledger_key
from partnero_bridge.observability import logger, mask_key
from partnero_bridge.partnero import AnswerKind
from partnero_bridge.signup.mapping import customer_request
from partnero_bridge.signup.models import SignupDelivery

if TYPE_CHECKING:
    from partnero_bridge.runtime import Runtime

# Partnero's answer -> (ledger status, outcome)
_RESULTS = {
    AnswerKind.OK: ("created", OutcomeStatus.SENT),
    AnswerKind.DUPLICATE: ("exists", OutcomeStatus.ALREADY_RECORDED),
    AnswerKind.NOT_REFERRED: ("not_referred", OutcomeStatus.NOT_REFERRED),
}


def process_signup(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    delivery = envelope.payload_as(SignupDelivery)

    logger.append_keys(ledger_key=mask_key(customer_ledger_key(delivery.customer_key)))
    answer = runtime.partnero.create_customer(customer_request(delivery))
    if answer.kind not in _RESULTS:
        raise PermanentError(f"unexpected Partnero answer {answer.kind} to a customer create")
    ledger_status, outcome = _RESULTS[answer.kind]
    runtime.ledger.record_customer(
        CustomerRecord(
            customer_key=delivery.customer_key,
            status=ledger_status,
            partner_key=delivery.partner_key,
            delivery_id=envelope.delivery_id,
            detail=answer.message,
        )
    )
    return Outcome(
        status=outcome,
        detail=answer.message or ledger_status,
        ledger_key=customer_ledger_key(delivery.customer_key),
    )
