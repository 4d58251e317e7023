"""Every AWS call each function makes is allowed by its role, as SAM deploys the template.

moto does not enforce IAM, so a grant missing from a role would pass every other test and
be an AccessDenied in production: a sign-up, sale or dead letter lost. Here realistic
flows run through the eight functions in-process (one stack, Partnero sandbox, fake Ecwid and
Stripe APIs); every botocore call is recorded with the function that made it (its code, or
its event source mapping, which polls the work queue with the function's role), translated
into the IAM actions and ARNs AWS checks, and evaluated against the function's role in the
SAM-transformed template.

The flows: sign-ups (unsigned from a browser, signed, rate limited, over a partner's
budget, a duplicate, one retried and one dead-lettered, one that sends its customer's
waiting Ecwid and Stripe sales back to their queues); Ecwid orders (paid, duplicate,
partly refunded, waiting for a sign-up, retried, dead-lettered) and a webhook of an
unconfigured store (parked); Stripe events (invoice.paid, a duplicate, a refund,
customer.updated, a waiting sale, retried, dead-lettered); the nightly reconciliation
(planned by its scheduled function, and healing chunks re-checking two transactions
Partnero lost).

Grants no flow exercised are listed in the run's figures; only the ones listed in
``NOT_EXERCISED`` (with why) may stay unexercised. Removing one grant from a copy of the
template makes the check fail, naming the call that needs it (the negative test, one grant
per function).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cfnlint.decode import cfn_yaml

from partnero_bridge_cli.local.aws import LocalResources
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.gateway import TEST_SOURCE_IP_HEADER
from partnero_bridge_cli.local.pollers import QueuePoller
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.support import ecwid as ecwid_webhooks
from tests.support import stripe as stripe_events
from tests.support.iam import (
    CODE,
    EVENT_SOURCE,
    ApiCall,
    CallRecorder,
    Grant,
    Permission,
    ResourceArns,
    RolePolicy,
    required_permissions,
    resolver_of,
    role_policies,
)
from tests.support.inprocess import ROOT, InProcessBridge, in_process_bridge
from tests.support.sam_transform import transform
from tests.support.signup import signed_signup

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(60)]

FUNCTIONS = (
    "SignupIngestFunction",
    "SignupProcessFunction",
    "EcwidOrderIngestFunction",
    "EcwidOrderProcessFunction",
    "StripeEventIngestFunction",
    "StripeEventProcessFunction",
    "ReconcileScheduleFunction",
    "ReconcileWorkerFunction",
)
SHOP = "https://shop.example"
HMAC_SECRET = "iam-coverage-signup-hmac-7f3a"
STORE = 1003
STORE_TOKEN = "secret_iam_coverage_store_token"
CLIENT_SECRET = "iam-coverage-ecwid-client-secret"
STRIPE_SECRET = "whsec_iam_coverage_1"
STRIPE_KEY = "rk_test_iam_coverage_reader"
# The customer whose Ecwid and Stripe sales wait for a sign-up, then are sent back.
LATE = "kenji@example.com"

# Grants that no flow here exercises, with why they stay. Anything else granted and never
# exercised fails test_every_grant_is_exercised_or_explained: a flow is missing, or the
# grant is unused. (logs and X-Ray are Lambda's own, outside what runs in-process.)
LAMBDA_OWN = frozenset(
    {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)
# Powertools' idempotency reads the record only when a conditional put fails without
# returning the item it found; DynamoDB returns it (ReturnValuesOnConditionCheckFailure),
# so duplicates are answered by the put alone. The read stays granted for that fallback.
_IDEMPOTENCY_READ = "only when DynamoDB does not return the existing item"
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    (function, "dynamodb:GetItem", "IdempotencyTable.Arn"): _IDEMPOTENCY_READ
    for function in (
        "SignupProcessFunction",
        "EcwidOrderProcessFunction",
        "StripeEventProcessFunction",
    )
} | {
    # A resumed chunk reads back its earlier pages' findings; a first run writes them only.
    ("ReconcileWorkerFunction", "dynamodb:BatchGetItem", "LedgerTable.Arn"): (
        "only when a chunk resumes after a timeout or a failure"
    ),
}


# ---------------------------------------------------------------- the flows


@dataclass
class Recording:
    calls: list[ApiCall]
    unseen: list[str]
    errors: list[str]
    resources: LocalResources
    parameters: dict[str, str]


class Flows:
    """Drives the stack like its callers do; each step checks what a user would see, so a
    flow that silently did nothing cannot pass for coverage."""

    def __init__(
        self,
        bridge: InProcessBridge,
        recorder: CallRecorder,
        sandbox: PartneroSandbox,
        ecwid: FakeEcwid,
        stripe_api: FakeStripeApi,
    ) -> None:
        self.bridge, self.recorder = bridge, recorder
        self.sandbox, self.ecwid, self.stripe_api = sandbox, ecwid, stripe_api
        self._addresses = iter(range(1, 250))

    # -- helpers ------------------------------------------------------------------------
    def browser_signup(self, email: str, partner: str | None, address: str = "") -> int:
        """An unsigned sign-up from the shop's page (its own address unless given)."""
        body = {"email": email, **({"partner_key": partner} if partner else {})}
        ip = address or f"198.51.100.{next(self._addresses)}"
        headers = {"origin": SHOP, TEST_SOURCE_IP_HEADER: ip}
        return self.bridge.call("POST", "/signup", body, headers).status

    def signed_signup(self, email: str, partner: str) -> int:
        """A sign-up from the shop's backend, signed."""
        raw, headers = signed_signup({"email": email, "partner_key": partner}, HMAC_SECRET)
        return self.bridge.call("POST", "/signup", raw, headers).status

    def ecwid_webhook(
        self, order: dict[str, Any], event: str = "order.created", store: int = STORE
    ) -> Any:
        body = ecwid_webhooks.webhook(event, store, order)
        raw, headers = ecwid_webhooks.signed(body, CLIENT_SECRET)
        answer = self.bridge.call("POST", "/webhooks/ecwid", raw, headers)
        assert answer.status == 200, answer.body
        return answer.body

    def stripe_event(self, event: dict[str, Any], held: list[dict[str, Any]]) -> None:
        self.stripe_api.load_event(event, held)
        raw, headers = stripe_events.signed(event, STRIPE_SECRET)
        answer = self.bridge.call("POST", "/webhooks/stripe", raw, headers)
        assert answer.status == 200, answer.body

    def stripe_sample(self, name: str) -> None:
        self.stripe_event(*stripe_events.load_with_state(name))

    def customers(self) -> set[str]:
        return {str(c["key"]) for c in self.sandbox.customers()}

    def transactions(self) -> set[str]:
        return {str(t["key"]) for t in self.sandbox.transactions() if not t.get("deleted")}

    def amount(self, key: str) -> str:
        [live] = [
            t for t in self.sandbox.transactions() if t["key"] == key and not t.get("deleted")
        ]
        return str(Decimal(str(live["amount"])))

    def dead_letters(self, queue: str) -> list[dict[str, Any]]:
        return self.bridge.messages(queue)

    def process_visible(self, queue: str) -> None:
        """Feed a work queue's visible messages to its function (postponed ones stay)."""
        function = self.bridge.stack.consumer_of(queue).logical_id
        poller = QueuePoller(
            self.bridge.sqs,
            self.bridge.queue_url(queue),
            self.bridge.resources.attributes[(queue, "Arn")],
            function,
            10,
            self.bridge.invoke,
            lambda line: None,
        )
        url = self.bridge.queue_url(queue)
        with self.recorder.acting_as(function, EVENT_SOURCE):
            for _ in range(20):
                visible = self.bridge.sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
                if visible == "0":
                    return
                poller.poll_once()
        raise AssertionError(f"{queue} still has visible messages")

    # -- sign-ups -------------------------------------------------------------------------
    def signups(self) -> None:
        assert self.browser_signup("jane@example.com", "demo-partner", "198.51.100.251") == 202
        self.bridge.drain("signup")
        assert "jane@example.com" in self.customers()
        # The same sign-up again: a duplicate delivery, answered by the idempotency table.
        sent = len(self.sandbox.requests())
        assert self.browser_signup("jane@example.com", "demo-partner", "198.51.100.251") == 202
        self.bridge.drain("signup")
        assert len(self.sandbox.requests()) == sent

        assert self.signed_signup("sam@example.com", "demo-partner") == 202
        self.bridge.drain("signup")
        assert "sam@example.com" in self.customers()

        # Past the per-address limit (2 a minute) a 429; these name no partner, so nothing
        # is queued either way.
        statuses = [
            self.browser_signup(f"r{i}@example.com", None, "198.51.100.252") for i in range(5)
        ]
        assert 429 in statuses, statuses

        # Over acme's budget (2 unsigned an hour): the third waits for the next hour.
        if 3600 - time.time() % 3600 < 10:
            time.sleep(10)  # the three must be counted in one hour
        for i in range(3):
            assert self.browser_signup(f"b{i}@example.com", "acme") == 202
        self.process_visible("SignupQueue")
        assert {"b0@example.com", "b1@example.com"} <= self.customers()
        assert "b2@example.com" not in self.customers()
        assert self.bridge.queue_depth("SignupQueue") == 1
        self.bridge.sqs.purge_queue(QueueUrl=self.bridge.queue_url("SignupQueue"))

        # Partnero fails once (retried), then refuses one as invalid (dead-lettered).
        self.sandbox.inject_fault(Fault(status=500, count=1))
        assert self.signed_signup("retry@example.com", "demo-partner") == 202
        self.bridge.drain("signup")
        assert "retry@example.com" in self.customers()
        self.sandbox.inject_fault(Fault(status=422, count=1))
        assert self.signed_signup("bad@example.com", "demo-partner") == 202
        self.bridge.drain("signup")
        assert len(self.dead_letters("SignupDeadLetterQueue")) == 1

    # -- Ecwid ----------------------------------------------------------------------------
    def ecwid_orders(self) -> None:
        order = ecwid_webhooks.ORDER
        assert self.ecwid_webhook(order) == {"status": "accepted"}
        self.bridge.drain("ecwid")
        assert "ecwid_1003_K8XTQ" in self.transactions()
        sent = len(self.sandbox.requests())
        self.ecwid_webhook(order)  # Ecwid redelivers: a duplicate
        self.bridge.drain("ecwid")
        assert len(self.sandbox.requests()) == sent

        refunded = {
            **copy.deepcopy(order),
            "paymentStatus": "PARTIALLY_REFUNDED",
            "refundedAmount": 20.0,
            "refunds": [{"date": "2026-11-21 10:00:00 +0000", "source": "CP", "amount": 20.0}],
        }
        self.ecwid.put_order(STORE, refunded)
        self.ecwid_webhook(refunded, "order.updated")
        self.bridge.drain("ecwid")
        # The commission keeps the share not refunded: 60.00 x (71.39 - 20) / 71.39.
        assert self.amount("ecwid_1003_K8XTQ") == "43.19"

        # A webhook of a store the bridge is not configured for: parked.
        parked = self.ecwid_webhook(order, store=777)
        assert parked == {"status": "parked", "reason": "store_not_configured"}

        # Partnero fails once (retried), then refuses a sale as invalid (dead-lettered).
        retried = {**order, "id": "RETRY", "internalId": 11}
        self.ecwid.put_order(STORE, retried)
        self.sandbox.inject_fault(Fault(status=500, count=1))
        self.ecwid_webhook(retried)
        self.bridge.drain("ecwid")
        assert "ecwid_1003_RETRY" in self.transactions()
        refused = {**order, "id": "REFUSED", "internalId": 12}
        self.ecwid.put_order(STORE, refused)
        self.sandbox.inject_fault(
            Fault(status=422, count=1, method="POST", path_prefix="/transactions")
        )
        self.ecwid_webhook(refused)
        self.bridge.drain("ecwid")
        assert len(self.dead_letters("EcwidOrderDeadLetterQueue")) == 1

        # A sale without a partner, of a customer Partnero does not know: it waits for a
        # sign-up, then is remembered on the customer as not referred.
        waiting = {
            **order,
            "id": "LATE",
            "internalId": 13,
            "email": LATE,
            "extraFields": {},
            "orderExtraFields": [],
        }
        self.ecwid.put_order(STORE, waiting)
        self.ecwid_webhook(waiting)
        self.bridge.drain("ecwid")
        assert "ecwid_1003_LATE" not in self.transactions()

    # -- Stripe ---------------------------------------------------------------------------
    def stripe_events(self) -> None:
        self.stripe_sample("checkout.session.completed.subscription")
        self.stripe_sample("invoice.paid.subscription_create")
        self.bridge.drain("stripe")
        assert "stripe_in_FIRSTAdaPartneroDemo" in self.transactions()
        sent = len(self.sandbox.requests())
        self.stripe_sample("invoice.paid.subscription_create")  # Stripe redelivers
        self.bridge.drain("stripe")
        assert len(self.sandbox.requests()) == sent

        self.stripe_sample("customer.updated")
        self.stripe_sample("checkout.session.completed.payment")
        self.bridge.drain("stripe")
        self.stripe_sample("charge.refunded.partial")
        self.stripe_sample("refund.created")
        self.bridge.drain("stripe")
        assert self.amount("stripe_pi_ONEOFFGracePartnero") == "14.99"

        self.sandbox.inject_fault(Fault(status=500, count=1))
        self.stripe_sample("invoice.paid.subscription_cycle")
        self.bridge.drain("stripe")
        assert "stripe_in_CYCLE1AdaPartneroDemo" in self.transactions()
        self.sandbox.inject_fault(
            Fault(status=422, count=1, method="POST", path_prefix="/transactions")
        )
        self.stripe_sample("invoice.paid.subscription_cycle.2")
        self.bridge.drain("stripe")
        assert len(self.dead_letters("StripeEventDeadLetterQueue")) == 1

        # Kenji's payment names no partner anywhere in Stripe: it waits for his sign-up.
        event, held = stripe_events.load_with_state("checkout.session.completed.jpy")
        for obj in [event["data"]["object"], *held]:
            obj["metadata"] = {}
        self.stripe_event(event, held)
        self.bridge.drain("stripe")
        assert "stripe_pi_JPYKenjiPartneroDemo" not in self.transactions()

    # -- the late sign-up -----------------------------------------------------------------
    def late_signup(self) -> None:
        """Kenji signs up: his waiting Ecwid and Stripe sales go back to their queues."""
        assert self.signed_signup(LATE, "acme") == 202
        self.bridge.drain("signup")
        assert self.bridge.queue_depth("EcwidOrderQueue") == 1
        assert self.bridge.queue_depth("StripeEventQueue") == 1
        self.bridge.drain("ecwid")
        self.bridge.drain("stripe")
        assert {"ecwid_1003_LATE", "stripe_pi_JPYKenjiPartneroDemo"} <= self.transactions()

    # -- the nightly reconciliation ------------------------------------------------------
    def reconcile(self) -> None:
        """Partnero loses an Ecwid and a Stripe transaction; the schedule's function plans
        the nightly chunks, and healing chunks over the whole history (the samples' dates
        are old) re-check both through their work queues, which make them again."""
        lost = ("ecwid_1003_LATE", "stripe_pi_JPYKenjiPartneroDemo")
        headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
        for key in lost:
            httpx.delete(
                f"{self.sandbox.url}/transactions/{key}", headers=headers
            ).raise_for_status()
        assert not set(lost) & self.transactions()
        planned = self.bridge.invoke("ReconcileScheduleFunction", {"reconcile": "scheduled"})
        assert planned.payload["chunks"] == 8, planned
        now = int(time.time())
        for chunk in (
            {"source": "stripe", "since": 0, "until": now, "heal": True},
            {"source": "ecwid", "store": str(STORE), "since": 0, "until": now, "heal": True},
        ):
            self.bridge.sqs.send_message(
                QueueUrl=self.bridge.queue_url("ReconcileQueue"), MessageBody=json.dumps(chunk)
            )
        self.bridge.drain("ReconcileQueue", timeout=40)
        self.bridge.drain("ecwid")
        self.bridge.drain("stripe")
        assert set(lost) <= self.transactions()


def _attribute_invocations(monkeypatch: pytest.MonkeyPatch, recorder: CallRecorder) -> None:
    """Calls inside an invocation are the function's code; a drain outside one is its event
    source mapping (receive, delete, queue attributes: with the function's role)."""
    invoke, drain = InProcessBridge.invoke, InProcessBridge.drain

    def invoking(self: InProcessBridge, function: str, event: dict[str, Any]) -> Any:
        with recorder.acting_as(function, CODE):
            return invoke(self, function, event)

    def draining(self: InProcessBridge, name: str, timeout: float = 20.0) -> None:
        function = self.stack.consumer_of(self.work_queue(name)).logical_id
        with recorder.acting_as(function, EVENT_SOURCE):
            drain(self, name, timeout)

    monkeypatch.setattr(InProcessBridge, "invoke", invoking)
    monkeypatch.setattr(InProcessBridge, "drain", draining)


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        PartneroSandbox(api_key=SANDBOX_KEY, partners=("demo-partner", "acme")) as sandbox,
        FakeEcwid(stores={STORE: STORE_TOKEN}) as ecwid,
        FakeStripeApi(api_keys=(STRIPE_KEY,)) as stripe_api,
    ):
        ecwid.put_order(STORE, ecwid_webhooks.ORDER)
        recorder = CallRecorder()
        recorder.install(monkeypatch)
        _attribute_invocations(monkeypatch, recorder)
        env = {
            "PARTNERO_API_URL": sandbox.url,
            "PARTNERO_API_KEY": SANDBOX_KEY,
            "SIGNUP_ALLOWED_ORIGINS": SHOP,
            "SIGNUP_HMAC_SECRET": HMAC_SECRET,
            "SIGNUP_RATE_LIMIT_PER_MINUTE": "2",
            "SIGNUP_PARTNER_BUDGET_PER_HOUR": "2",
            "ECWID_API_URL": ecwid.url,
            "ECWID_CLIENT_SECRET": CLIENT_SECRET,
            "ECWID_STORE_TOKENS": json.dumps({str(STORE): STORE_TOKEN}),
            "STRIPE_API_URL": stripe_api.url,
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
            "STRIPE_LIVEMODE": "false",
            "BRIDGE_MAX_RECEIVES": "3",
            "BRIDGE_RETRY_BASE_SECONDS": "0",
            "BRIDGE_SIGNUP_WAIT_SECONDS": "1",
            "RECONCILE_API_SHARE": "0",
        }
        with in_process_bridge(monkeypatch, env) as bridge:
            flows = Flows(bridge, recorder, sandbox, ecwid, stripe_api)
            flows.signups()
            flows.ecwid_orders()
            flows.stripe_events()
            flows.late_signup()
            flows.reconcile()
            yield Recording(
                list(recorder.calls),
                list(recorder.unseen),
                list(recorder.errors),
                bridge.resources,
                dict(bridge.parameters),
            )


# ---------------------------------------------------------------- evaluation


def load_template() -> dict[str, Any]:
    template: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return template


@dataclass
class Verdict:
    """Per function: what its calls needed, what was refused, which grants went unused."""

    required: dict[str, dict[Permission, set[str]]]  # function -> permission -> call names
    denied: dict[str, list[str]]
    unexercised: dict[str, list[Grant]]


def evaluate(recording: Recording, template: dict[str, Any]) -> Verdict:
    transformed = transform(template, {"Stage": "dev"})
    policies: dict[str, RolePolicy] = role_policies(
        transformed, resolver_of(recording.resources, recording.parameters)
    )
    arn = ResourceArns(recording.resources)
    required: dict[str, dict[Permission, set[str]]] = {f: {} for f in FUNCTIONS}
    for call in recording.calls:
        if call.function is None:
            continue  # the test's own calls (setting up, reading queues and tables)
        for permission in required_permissions(call, arn):
            required[call.function].setdefault(permission, set()).add(f"{call.name} ({call.by})")
    denied = {
        function: sorted(
            f"{p.action} on {p.resource}, needed by {', '.join(sorted(calls))}"
            for p, calls in needed.items()
            if not policies[function].allows(p)
        )
        for function, needed in required.items()
    }
    unexercised = {
        function: [
            grant
            for grant in policies[function].allow
            if not any(grant.allows(p) for p in required[function])
        ]
        for function in FUNCTIONS
    }
    return Verdict(required, denied, unexercised)


@pytest.fixture(scope="module")
def verdict(recording: Recording) -> Verdict:
    return evaluate(recording, load_template())


def test_every_call_was_seen(recording: Recording, figures: Callable[..., None]) -> None:
    """The recorder saw every request that reached the emulated AWS, and could read it."""
    assert recording.unseen == []
    assert recording.errors == []
    by_function = {f: sum(c.function == f for c in recording.calls) for f in FUNCTIONS}
    assert all(by_function.values()), by_function
    figures(
        calls=len(recording.calls),
        by_the_functions=sum(by_function.values()),
        per_function=", ".join(f"{f} {n}" for f, n in by_function.items()),
    )


def test_a_call_the_recorder_did_not_see_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check of the check: a client of a session made before the recorder was
    installed reaches moto unseen, and that is reported (its calls cannot be judged)."""
    import boto3
    from moto import mock_aws

    def session() -> boto3.session.Session:
        return boto3.session.Session("testing", "testing", region_name="us-east-1")

    with mock_aws():
        early = session().client("sqs")
        recorder = CallRecorder()
        recorder.install(monkeypatch)
        late = session().client("sqs")
        late.create_queue(QueueName="seen")
        early.list_queues()
    assert [call.name for call in recorder.calls] == ["sqs.CreateQueue"]
    assert len(recorder.unseen) == 1


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_call_is_allowed_by_the_functions_role(
    verdict: Verdict, function: str, figures: Callable[..., None]
) -> None:
    assert verdict.denied[function] == []
    needed = verdict.required[function]
    figures(
        permissions=len(needed),
        allowed=", ".join(sorted({f"{p.action}" for p in needed})),
        granted_not_exercised=", ".join(
            f"{g.action} on {g.label}" for g in verdict.unexercised[function]
        )
        or "none",
    )


def test_every_grant_is_exercised_or_explained(verdict: Verdict) -> None:
    unexplained = sorted(
        (function, grant.action, grant.label)
        for function, grants in verdict.unexercised.items()
        for grant in grants
        if grant.action not in LAMBDA_OWN
        and (function, grant.action, grant.label) not in NOT_EXERCISED
    )
    assert unexplained == []


# ---------------------------------------------------------------- the check can fail


def without_grant(template: dict[str, Any], role: str, action: str, target: str) -> dict[str, Any]:
    """A copy of ``template`` whose ``role`` no longer grants ``action`` on ``target`` (a
    logical id, "X" for !Ref X or "X.Arn"); other actions and resources stay granted."""
    copied = copy.deepcopy(template)
    policies = copied["Resources"][role]["Properties"]["Policies"]
    removed = 0
    for policy in policies:
        kept: list[dict[str, Any]] = []
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            targets = (
                statement["Resource"]
                if isinstance(statement["Resource"], list)
                else [statement["Resource"]]
            )
            hit = [t for t in targets if _named(t) == target]
            if action not in actions or not hit:
                kept.append(statement)
                continue
            removed += 1
            others = [t for t in targets if t not in hit]
            if others:
                kept.append({**statement, "Resource": others})
            if len(actions) > 1:
                kept.append(
                    {**statement, "Action": [a for a in actions if a != action], "Resource": hit}
                )
        policy["PolicyDocument"]["Statement"] = kept
    assert removed, f"{role} grants no {action} on {target}"
    return copied


def _named(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return ".".join(attribute) if isinstance(attribute, list) else str(attribute)
    return str(value)


@pytest.mark.parametrize(
    ("function", "action", "target"),
    [
        ("SignupIngestFunction", "dynamodb:UpdateItem", "RateLimitTable.Arn"),
        ("SignupProcessFunction", "sqs:SendMessage", "StripeEventQueue.Arn"),
        ("EcwidOrderIngestFunction", "dynamodb:PutItem", "ParkedWebhooksTable.Arn"),
        ("EcwidOrderProcessFunction", "sqs:ChangeMessageVisibility", "EcwidOrderQueue.Arn"),
        ("StripeEventIngestFunction", "secretsmanager:GetSecretValue", "StripeSecret"),
        ("StripeEventProcessFunction", "dynamodb:DeleteItem", "IdempotencyTable.Arn"),
    ],
)
def test_a_missing_grant_is_caught(
    recording: Recording, function: str, action: str, target: str
) -> None:
    role = function.replace("Function", "Role")
    verdict = evaluate(recording, without_grant(load_template(), role, action, target))
    assert verdict.denied[function], f"{function} still allowed everything without {action}"
    assert all(line.startswith(f"{action} on ") for line in verdict.denied[function])
    others = {f: d for f, d in verdict.denied.items() if f != function and d}
    assert others == {}
