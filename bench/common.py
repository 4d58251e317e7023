"""What every section shares: paths, the output (tables, targets) and the stack as deployed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "common"
EVENTS = ROOT / "events"
for _extra in (ROOT, ROOT / "cli", LAYER_DIR):
    if str(_extra) not in sys.path:
        sys.path.append(str(_extra))

MB = 1024 * 1024
# source -> (ingest function, process function, label)
SOURCES = {
    "signup": ("SignupIngestFunction", "SignupProcessFunction", "sign-up"),
    "ecwid": ("EcwidOrderIngestFunction", "EcwidOrderProcessFunction", "Ecwid PAID order"),
    "stripe": ("StripeEventIngestFunction", "StripeEventProcessFunction", "Stripe invoice.paid"),
}
PATHS = ("ingest", "process")
# The bench's own secrets (nothing real), as the local stack seeds them into Secrets Manager.
SECRETS_ENV = {
    "PARTNERO_API_KEY": "bench-partnero-key",
    "SIGNUP_HMAC_SECRET": "bench-signup-hmac",
    "ECWID_CLIENT_SECRET": "bench-ecwid-client-secret",
    "ECWID_STORE_TOKENS": '{"1003": "secret_bench_store_token"}',
    "STRIPE_WEBHOOK_SECRETS": "whsec_bench_endpoint_secret",
    "STRIPE_API_KEY": "rk_live_bench_reader",  # live: the deployed default StripeLivemode=true
}
ECWID_STORE = "1003"


class BenchError(Exception):
    """A section could not be measured; it is reported and the run goes on."""


@dataclass
class Target:
    name: str
    ok: bool | None  # None: not measured
    measured: str
    limit: str

    def line(self) -> str:
        status = "SKIP" if self.ok is None else "PASS" if self.ok else "MISS"
        return f"{status} {self.name}: {self.measured} ({self.limit})"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    cells = [list(headers), *([str(c) for c in r] for r in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def per_event(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def run_python(args: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: int = 180) -> Any:
    """This venv's interpreter on our own code; a failure is a BenchError with its last lines."""
    command = [sys.executable, *args]
    done = subprocess.run(  # noqa: S603 - this venv's interpreter, our own code
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:]) or "no output"
        raise BenchError(f"python {args[0]} failed (exit {done.returncode}):\n{tail}")
    return done


@dataclass
class Deployment:
    """template.yaml with made-up resource names (nothing is created): each function's
    environment as Lambda would give it."""

    stack: Any
    envs: dict[str, dict[str, str]] = field(default_factory=dict)


def lambda_env(spec: Any, resolver: Any) -> dict[str, str]:
    """A function's environment as Lambda gives it, tracing on (LAMBDA_TASK_ROOT turns
    Powertools tracing on; the template says Tracing: Active)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update({name: str(resolver.resolve(v)) for name, v in spec.environment.items()})
    lambda_vars = {
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), str(LAYER_DIR)]),
    }
    region = dict.fromkeys(("AWS_REGION", "AWS_DEFAULT_REGION"), "us-east-1")
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {**env, **lambda_vars, **region, **dict.fromkeys(keys, "bench")}


def parameters(stack: Any) -> dict[str, str]:
    from partnero_bridge_cli.local.stack import parameter_overrides

    # The bench's Ecwid store is configured (others would be parked, not processed).
    return {**parameter_overrides(stack, SECRETS_ENV), "EcwidStoreIds": ECWID_STORE}


def deployment() -> Deployment:
    from partnero_bridge_cli.local.template import Resolver, read_stack

    stack = read_stack(ROOT)
    arn, url = "arn:aws:{}:us-east-1:123456789012:{}".format, "https://sqs.us-east-1.amazonaws.com"
    name = {r: f"partnero-bridge-bench-{r}" for r in [*stack.queues, *stack.tables, *stack.secrets]}
    refs = {q: f"{url}/123456789012/{name[q]}" for q in stack.queues}
    refs |= {t: name[t] for t in stack.tables}
    refs |= {s: arn("secretsmanager", f"secret:{name[s]}-AbCdEf") for s in stack.secrets}
    attributes = {(q, "Arn"): arn("sqs", name[q]) for q in stack.queues}
    resolver = Resolver(parameters(stack), refs, attributes)
    # Nothing may reach real AWS: an unexpected client fails fast here.
    envs = {
        s.logical_id: {**lambda_env(s, resolver), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        for s in stack.functions.values()
    }
    return Deployment(stack, envs)
