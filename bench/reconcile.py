"""6. ``reconcile`` of a large seeded Stripe window against the local fakes.

The local fake Stripe API (over HTTP, unpaced: rate share 0) holds ``count`` deterministic
payments (``local/seed.py``) of the last 25 days with their events; the Partnero sandbox
(over HTTP) holds a transaction for a third of the referred ones, made earlier by hand;
DynamoDB, SQS and Secrets Manager are moto in this process, with the template's tables,
queues and secrets. The Stripe process function's settings run ``reconcile_source`` as the
command does, report only. Measured: wall time, payments a second, remote calls a payment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.common import LAYER_DIR, ROOT, Target, heading

DAY = 86400
KEY = "rk_test_bench_reconcile"
PARTNERO_KEY = "bench-reconcile-partnero-key"
TARGET_SECONDS = 300.0  # 10,000 payments in under 5 minutes


@dataclass
class ReconcileFigures:
    payments: int
    seconds: float
    calls: dict[str, int]
    counts: dict[str, int]


@contextmanager
def aws_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "PartneroBridge",
        }
    )  # fmt: skip
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def make_some(sandbox_url: str, sales: list[Any]) -> None:
    """Transactions made by hand earlier, for some of the referred payments."""
    import httpx

    auth = {"Authorization": f"Bearer {PARTNERO_KEY}"}
    with httpx.Client(base_url=sandbox_url, headers=auth) as partnero:
        for sale in sales:
            customer = {"key": sale.customer_key, "partner": {"key": sale.partner_key}}
            amount = {"amount": str(sale.expected), "amount_units": sale.currency}
            body = {"key": sale.transaction_key, **amount, "action": "sale", "customer": customer}
            body["options"] = {"create_customer": True}
            partnero.post("/transactions", json=body).raise_for_status()


def measure(count: int, workers: int = 8) -> ReconcileFigures:
    """Seed ``count`` Stripe payments and reconcile their window once (see module doc)."""
    from moto import mock_aws

    from partnero_bridge.config import BridgeSettings
    from partnero_bridge.reconcile.service import paced_runtime, reconcile_source
    from partnero_bridge_cli.local.aws import create_resources
    from partnero_bridge_cli.local.sandbox import PartneroSandbox
    from partnero_bridge_cli.local.seed import DEFAULT_PARTNERS, plan_stripe
    from partnero_bridge_cli.local.stack import function_environment, parameter_overrides
    from partnero_bridge_cli.local.stripe_api import FakeStripeApi
    from partnero_bridge_cli.local.template import read_stack
    from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

    bridge_logs_to_stderr()
    end = int(time.time()) - 60
    since = end - 25 * DAY
    plan = plan_stripe(count, start=since, end=end, seed=1)
    with (
        aws_environment(),
        mock_aws(),
        PartneroSandbox(api_key=PARTNERO_KEY, partners=DEFAULT_PARTNERS) as sandbox,
        FakeStripeApi(api_keys=(KEY,)) as stripe_api,
    ):
        plan.apply(stripe_api)
        make_some(sandbox.url, [s for s in plan.manifest.sales if s.expected is not None][::3])
        user_env = {
            "PARTNERO_API_URL": sandbox.url, "PARTNERO_API_KEY": PARTNERO_KEY,
            "STRIPE_API_URL": stripe_api.url, "STRIPE_API_KEY": KEY, "STRIPE_LIVEMODE": "false",
        }  # fmt: skip
        stack = read_stack(ROOT)
        parameters = parameter_overrides(stack, user_env)
        resources = create_resources(stack, parameters, None, user_env)  # type: ignore[arg-type]
        spec = stack.functions["StripeEventProcessFunction"]
        environment = function_environment(
            spec, resources.resolver(parameters), user_env, "", LAYER_DIR
        )
        runtime, meters = paced_runtime(BridgeSettings.from_environ(environment), 0)
        started = time.perf_counter()
        report = reconcile_source(runtime, meters, "stripe", since, None, workers=workers)
        seconds = time.perf_counter() - started
    return ReconcileFigures(len(report.findings), seconds, report.calls, report.counts())


def section(args: Any, targets: list[Target]) -> None:
    count = args.reconcile_payments
    heading(f"Reconcile: {count} Stripe payments against the local fakes")
    figures = measure(count)
    payments = max(figures.payments, 1)
    rate = figures.payments / figures.seconds if figures.seconds else 0.0
    calls = ", ".join(f"{name} {n / payments:.2f}" for name, n in sorted(figures.calls.items()))
    total = sum(figures.calls.values()) / payments
    print(
        f"reconciled {figures.payments} Stripe payments in {figures.seconds:.1f} s ({rate:.0f}/s)"
    )
    print(f"remote calls per payment: {calls} (total {total:.2f})")
    print("kinds: " + ", ".join(f"{kind} {n}" for kind, n in figures.counts.items() if n))
    limit = TARGET_SECONDS * count / 10_000
    measured = f"{figures.seconds:.0f} s, {total:.2f} remote calls a payment"
    targets.append(
        Target(f"reconcile {count} payments", figures.seconds < limit, measured, f"< {limit:.0f} s")
    )
