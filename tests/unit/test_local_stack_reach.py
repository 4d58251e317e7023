"""The first minutes with the local stack: the CLI finds the running stack without an
`export` line and says in one line when none runs; `run` names a busy port and the variable
that moves it before anything starts; the terminal gets one short line per outcome."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from partnero_bridge_cli.local.console import console_line
from partnero_bridge_cli.local.deliveries import DeliveryFeed
from partnero_bridge_cli.local.stack import STACK_PATH, StackConfig, StackRefused, port_problem
from partnero_bridge_cli.stack_settings import reach_local_stack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ABOUT = {
    "aws_endpoint": "http://127.0.0.1:45660",
    "region": "us-east-1",
    "ports": {"BRIDGE_AWS_PORT": 45660, "BRIDGE_ECWID_PORT": 40200},
}


@pytest.fixture
def gateway() -> Iterator[str]:
    """A stand-in for a running stack's gateway: answers GET /_local/stack."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(ABOUT).encode() if self.path == STACK_PATH else b"{}"
            self.send_response(200 if self.path == STACK_PATH else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_new_terminal_reaches_the_running_stack(gateway: str) -> None:
    env = {
        "BRIDGE_URL": gateway,
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAREALKEY",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
    }
    err = io.StringIO()

    assert reach_local_stack(None, env, err) is None

    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:45660"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    # The user's account is set aside for this process: the emulation's dummy keys instead.
    assert "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_SECRET_ACCESS_KEY"] == "testing"
    # The fakes' ports, for the commands that read the source APIs.
    assert env["BRIDGE_ECWID_PORT"] == "40200"
    assert err.getvalue() == (
        "the local stack: AWS at http://127.0.0.1:45660, us-east-1 "
        "(AWS_PROFILE, AWS_ACCESS_KEY_ID not used: --stack-name for a deployed stack)\n"
    )


def test_a_port_set_in_the_terminal_wins_over_the_stacks_answer(gateway: str) -> None:
    env = {"BRIDGE_URL": gateway, "BRIDGE_ECWID_PORT": "5000"}
    assert reach_local_stack(None, env, io.StringIO()) is None
    assert env["BRIDGE_ECWID_PORT"] == "5000"


@pytest.mark.parametrize(
    ("stack_name", "env"),
    [
        ("partnero-bridge-prod", {"AWS_PROFILE": "production"}),
        (None, {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_PROFILE": "x"}),
    ],
    ids=["deployed-stack", "endpoint-chosen"],
)
def test_a_stack_name_or_an_endpoint_of_ones_own_is_left_alone(
    stack_name: str | None, env: dict[str, str]
) -> None:
    before = dict(env)
    err = io.StringIO()
    assert reach_local_stack(stack_name, env, err) is None
    assert env == before
    assert err.getvalue() == ""


def test_no_running_stack_is_one_line() -> None:
    port = a_closed_port()
    env = {"BRIDGE_PORT": str(port)}
    problem = reach_local_stack(None, env, io.StringIO())
    assert problem == (
        f"the local stack is not running (nothing answers at http://127.0.0.1:{port}): start "
        "it with `make run` (BRIDGE_PORT if it runs on another port), or pass --stack-name "
        "for a deployed stack"
    )
    assert "AWS_ENDPOINT_URL" not in env


def config(**env: str) -> StackConfig:
    return StackConfig.from_env(ROOT, env)


def test_a_busy_port_is_named_with_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free = dict.fromkeys(("BRIDGE_PORT", "BRIDGE_SANDBOX_PORT", "BRIDGE_SHOP_PORT"), "0")
        free |= {"BRIDGE_ECWID_PORT": "0", "BRIDGE_STRIPE_API_PORT": "0"}
        assert port_problem(config(**free, BRIDGE_AWS_PORT=str(port))) == (
            f"port {port} is in use (BRIDGE_AWS_PORT): stop what uses it, or set "
            f"BRIDGE_AWS_PORT to a free port, e.g. `BRIDGE_AWS_PORT={port + 1} make run`"
        )
        # A fake replaced by a URL of one's own does not listen: its port is not checked.
        replaced = {**free, "BRIDGE_AWS_PORT": "0", "BRIDGE_ECWID_PORT": str(port)}
        assert port_problem(config(**replaced, ECWID_API_URL="http://ecwid.test")) is None


def test_a_running_stack_on_the_gateway_port_is_said_so(gateway: str) -> None:
    port = gateway.rsplit(":", 1)[1]
    problem = port_problem(config(BRIDGE_PORT=port, BRIDGE_AWS_PORT="0"))
    assert problem is not None
    assert problem.startswith(f"the local stack is already running at http://127.0.0.1:{port}")


def test_a_port_given_twice_or_not_a_number_is_refused() -> None:
    port = str(a_closed_port())
    assert port_problem(config(BRIDGE_AWS_PORT=port, BRIDGE_SHOP_PORT=port)) == (
        f"BRIDGE_AWS_PORT and BRIDGE_SHOP_PORT are both {port}: give each its own port"
    )
    with pytest.raises(StackRefused, match=r"^BRIDGE_PORT='30O0' is not a whole number"):
        config(BRIDGE_PORT="30O0")
    with pytest.raises(StackRefused, match=r"^BRIDGE_CONCURRENCY='0' is not a whole number"):
        config(BRIDGE_CONCURRENCY="0")


def log_line(message: str, **fields: Any) -> str:
    return json.dumps(
        {
            "level": fields.pop("level", "INFO"),
            "message": message,
            "timestamp": "2025-06-03 10:01:36,102+0000",
            "service": "partnero-bridge",
            "function_name": "StripeEventProcessFunction",
            **fields,
        }
    )


def test_the_terminal_gets_one_short_line_per_outcome() -> None:
    feed = DeliveryFeed()
    delivery = {"delivery_id": "stripe-evt_1RAda0InvoicePaidFirst00"}
    accepted = log_line("Stripe event accepted", event_type="invoice.paid", **delivery)
    processed = log_line(
        "delivery processed",
        ledger_key="stripe#invoice:in_FIRSTAdaPartneroDemo",
        outcome="sent",
        reason="paid",
        detail="created 20.00 USD: paid",
        receive_count=1,
        **delivery,
    )
    call = log_line("partnero call", operation="POST transactions", **delivery)
    fn = "StripeEventProcessFunction"

    assert console_line(fn, accepted, feed.observe(accepted)) is None  # queued: its outcome follows
    assert console_line(fn, call, feed.observe(call)) is None
    shown = console_line(fn, processed, feed.observe(processed))
    assert shown is not None
    clock, rest = shown.split(" ", 1)
    assert len(clock) == 8
    assert clock.count(":") == 2
    assert rest == (
        "stripe invoice.paid evt_1RAda0InvoicePaidFirst00 -> created 20.00 USD: paid "
        "(Stripe invoice in_FIRSTAdaPartneroDemo)"
    )


def test_metrics_and_chatter_stay_off_the_terminal_warnings_and_tracebacks_do_not() -> None:
    fn = "SignupProcessFunction"
    metric = json.dumps({"_aws": {"Timestamp": 1}, "Processed": [1.0]})
    assert console_line(fn, metric, None) is None
    assert console_line(fn, log_line("partnero call"), None) is None
    warning = log_line("secret read failed", level="WARNING", error="timeout", cold_start=True)
    shown = console_line(fn, warning, None)
    assert shown is not None
    assert shown.endswith(f" {fn} warning: secret read failed error=timeout")
    assert console_line(fn, "Traceback (most recent call last):", None) == (
        f"[{fn}] Traceback (most recent call last):"
    )
    done = log_line("reconcile chunk done", scope="stripe", drift=2)
    assert str(console_line("ReconcileWorkerFunction", done, None)).endswith(
        "ReconcileWorkerFunction reconcile chunk done scope=stripe drift=2"
    )
