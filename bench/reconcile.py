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
from typing import Any
from unittest import mock

from bench.common import LAYER_DIR, ROOT, Target, heading

DAY = 86400
KEY = "rk_test_bench_reconcile"
PARTNERO_KEY = "bench-reconcile-partnero-key"
TARGET_SECONDS = 300.0  # 10,000 payments in under 5 minutes


AWS_ENV = {
    **dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "testing"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "PartneroBridge",
}


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


def measure(count: int, workers: int = 8) -> tuple[Any, float]:
    """Seed ``count`` Stripe payments and reconcile their window once (see module doc): the
    report and the seconds it took."""
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
        mock.patch.dict(os.environ, AWS_ENV),
        mock_aws(),
        PartneroSandbox(api_key=PARTNERO_KEY, partners=DEFAULT_PARTNERS) as sandbox,
        FakeStripeApi(api_keys=(KEY,)) as stripe_api,
    ):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        plan.apply(stripe_api)
        make_some(sandbox.url, [s for s in plan.manifest.sales if s.expected is not None][::3])
        env = {"PARTNERO_API_URL": sandbox.url, "PARTNERO_API_KEY": PARTNERO_KEY}
        env |= {"STRIPE_API_URL": stripe_api.url, "STRIPE_API_KEY": KEY, "STRIPE_LIVEMODE": "false"}
        stack = read_stack(ROOT)
        parameters = parameter_overrides(stack, env)
        # No endpoint: moto in this process answers the default one.
        resources = create_resources(stack, parameters, None, env)  # type: ignore[arg-type]
        resolver = resources.resolver(parameters)
        spec = stack.functions["StripeEventProcessFunction"]
        settings = BridgeSettings.from_environ(
            function_environment(spec, resolver, env, "", LAYER_DIR)
        )
        runtime, meters = paced_runtime(settings, 0)
        started = time.perf_counter()
        report = reconcile_source(runtime, meters, "stripe", since, None, workers=workers)
        return report, time.perf_counter() - started


def section(args: Any, targets: list[Target]) -> None:
    count = args.reconcile_payments
    heading(f"Reconcile: {count} Stripe payments against the local fakes")
    report, seconds = measure(count)
    payments = max(len(report.findings), 1)
    calls = ", ".join(f"{name} {n / payments:.2f}" for name, n in sorted(report.calls.items()))
    total = sum(report.calls.values()) / payments
    print(f"reconciled {payments} Stripe payments in {seconds:.1f} s ({payments / seconds:.0f}/s)")
    print(f"remote calls per payment: {calls} (total {total:.2f})")
    print("kinds: " + ", ".join(f"{kind} {n}" for kind, n in report.counts().items() if n))
    limit, measured = (
        TARGET_SECONDS * count / 10_000,
        f"{seconds:.0f} s, {total:.2f} remote calls a payment",
    )
    targets.append(
        Target(f"reconcile {count} payments", seconds < limit, measured, f"< {limit:.0f} s")
    )
