"""`make bench`'s reconciliation section: ``reconcile`` of a large seeded Stripe window.

The local fake Stripe API (over HTTP, unpaced: ``--rate-share 0``) holds ``count``
deterministic payments (``local/seed.py``) of the last 25 days with their events; the
Partnero sandbox (over HTTP) holds a transaction for a third of the referred ones, made
earlier by hand; DynamoDB, SQS and Secrets Manager are moto in this process, with the
template's tables, queues and secrets. The Stripe process function's settings run
``partnero_bridge.reconcile.service.reconcile_source`` as the command does, report only.
Measured: wall time, payments a second, and the remote calls per payment by service.

Run on its own: ``.venv/bin/python bench/reconcile_bench.py [count]``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400
KEY = "rk_test_bench_reconcile"
PARTNERO_KEY = "bench-reconcile-partnero-key"
# Target: 10,000 payments in under 5 minutes against the local fakes.
TARGET_SECONDS = 300.0


@dataclass
class ReconcileFigures:
    payments: int
    seconds: float
    calls: dict[str, int]
    counts: dict[str, int]

    @property
    def per_payment(self) -> dict[str, float]:
        return {name: round(n / self.payments, 2) for name, n in sorted(self.calls.items())}


@contextmanager
def _aws_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "PartneroBridge",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure(count: int, workers: int = 8) -> ReconcileFigures:
    """Seed ``count`` Stripe payments and reconcile their window once (see module doc)."""
    import httpx
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
        _aws_environment(),
        mock_aws(),
        PartneroSandbox(api_key=PARTNERO_KEY, partners=DEFAULT_PARTNERS) as sandbox,
        FakeStripeApi(api_keys=(KEY,)) as stripe_api,
    ):
        plan.apply(stripe_api)
        made = [s for s in plan.manifest.sales if s.expected is not None][::3]
        with httpx.Client(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {PARTNERO_KEY}"}
        ) as partnero:
            for sale in made:
                partnero.post(
                    "/transactions",
                    json={
                        "key": sale.transaction_key,
                        "amount": str(sale.expected),
                        "amount_units": sale.currency,
                        "action": "sale",
                        "customer": {
                            "key": sale.customer_key,
                            "partner": {"key": sale.partner_key},
                        },
                        "options": {"create_customer": True},
                    },
                ).raise_for_status()
        user_env = {
            "PARTNERO_API_URL": sandbox.url,
            "PARTNERO_API_KEY": PARTNERO_KEY,
            "STRIPE_API_URL": stripe_api.url,
            "STRIPE_API_KEY": KEY,
            "STRIPE_LIVEMODE": "false",
        }
        stack = read_stack(ROOT)
        parameters = parameter_overrides(stack, user_env)
        resources = create_resources(stack, parameters, None, user_env)  # type: ignore[arg-type]
        environment = function_environment(
            stack.functions["StripeEventProcessFunction"],
            resources.resolver(parameters),
            user_env,
            "",
            ROOT / "layers" / "common",
        )
        settings = BridgeSettings.from_environ(environment)
        runtime, meters = paced_runtime(settings, 0)
        started = time.perf_counter()
        report = reconcile_source(runtime, meters, "stripe", since, None, workers=workers)
        seconds = time.perf_counter() - started
    return ReconcileFigures(len(report.findings), seconds, report.calls, report.counts())


def describe(figures: ReconcileFigures) -> list[str]:
    rate = figures.payments / figures.seconds if figures.seconds else 0.0
    calls = ", ".join(f"{name} {n}" for name, n in figures.per_payment.items())
    kinds = ", ".join(f"{kind} {n}" for kind, n in figures.counts.items() if n)
    return [
        f"reconciled {figures.payments} Stripe payments in {figures.seconds:.1f} s "
        f"({rate:.0f} a second)",
        f"remote calls per payment: {calls} "
        f"(total {sum(figures.calls.values()) / max(figures.payments, 1):.2f})",
        f"kinds: {kinds}",
    ]


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 10_000
    figures = measure(count)
    for line in describe(figures):
        print(line)
    return 0 if figures.seconds < TARGET_SECONDS * count / 10_000 else 1


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT / "cli")]
    sys.exit(main(sys.argv[1:]))
