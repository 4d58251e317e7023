"""The README's Try it, as a newcomer does it: `make run` with nothing configured, the
commands in a new terminal without any `export` line, every outcome quoted as the screen
shows it, the refund taking the commission down, a new customer per sign-up, `dlq list`,
and a second `run` that says the stack is already running, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_stack import ROOT, RunningStack, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def newcomer() -> Iterator[RunningStack]:
    running = RunningStack({}, json_logs=False)
    yield running
    assert running.stop() == 0, running.output()
    assert "Traceback" not in running.output()


def outcome(sent: subprocess.CompletedProcess[str]) -> str:
    """The line `send` printed about what became of the delivery."""
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Traceback" not in sent.stdout + sent.stderr
    last = sent.stdout.strip().splitlines()[-1]
    return last.split(": ", 1)[1]


def test_try_it_as_the_readme_says(newcomer: RunningStack) -> None:
    send = newcomer.cli_in_new_terminal
    assert outcome(send("send", "stripe/invoice.paid")) == (
        "created 20.00 USD: paid - Stripe invoice in_FIRSTAdaPartneroDemo"
    )
    assert outcome(send("send", "stripe/checkout.session.completed")) == (
        "created 19.99 USD: paid - Stripe payment intent pi_ONEOFFGracePartnero"
    )
    assert outcome(send("send", "stripe/charge.refunded")) == (
        "replaced 19.99 with 14.99 USD: paid, 500 of 1999 refunded or disputed (minor units)"
        " - Stripe payment intent pi_ONEOFFGracePartnero"
    )
    assert outcome(send("send", "ecwid/order.created")) == (
        "created 62.10 USD: order is PAID - Ecwid order 612804175 of store 1003"
    )
    # Each send of the sign-up sample is a new customer, never a duplicate of the last.
    for _ in range(2):
        assert outcome(send("send", "signup")) == "created - customer ja***@example.com"
    assert outcome(send("send", "stripe/invoice.paid")).startswith(
        "duplicate: already processed (created 20.00 USD: paid)"
    )
    listing = send("send")
    assert listing.returncode == 0
    assert listing.stdout.startswith("partnero-bridge send NAME signs and posts one of these")

    # Terminal 1: one short line per outcome, no JSON, no metric.
    wait_for(lambda: "-> duplicate" in newcomer.output(), 10, "the duplicate's line")
    shown = [line.split(" ", 1)[1] for line in newcomer.lines if " -> " in line]
    signups = [line for line in shown if line.startswith("signup ")]
    assert len(signups) == 2
    assert all(line.endswith("-> created (customer ja***@example.com)") for line in signups)
    assert [line for line in shown if line not in signups] == [
        "stripe invoice.paid evt_1RAda0InvoicePaidFirst00 -> created 20.00 USD: paid "
        "(Stripe invoice in_FIRSTAdaPartneroDemo)",
        "stripe checkout.session.completed evt_1RGrace0CheckoutCompleted -> created 19.99 USD: "
        "paid (Stripe payment intent pi_ONEOFFGracePartnero)",
        "stripe charge.refunded evt_3RONEOFF0GraceRefunded500 -> replaced 19.99 with 14.99 USD:"
        " paid, 500 of 1999 refunded or disputed (minor units) (Stripe payment intent "
        "pi_ONEOFFGracePartnero)",
        "ecwid order.created 3f1c9a52-7d4e-4b8a-9c61-2e5f0b7d4a18 -> created 62.10 USD: order "
        "is PAID (Ecwid order 612804175 of store 1003)",
        "stripe invoice.paid evt_1RAda0InvoicePaidFirst00 -> duplicate: already processed "
        "(created 20.00 USD: paid) (Stripe invoice in_FIRSTAdaPartneroDemo)",
    ]
    assert not [line for line in newcomer.lines if line.startswith(("{", "[")) or "_aws" in line]


def test_dlq_list_in_a_new_terminal_without_an_export(newcomer: RunningStack) -> None:
    listed = newcomer.cli_in_new_terminal("dlq", "list", AWS_PROFILE="production")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout == "no dead-lettered messages\n"
    assert listed.stderr.splitlines()[0] == (
        f"the local stack: AWS at {newcomer.aws_url}, us-east-1 "
        "(AWS_PROFILE not used: --stack-name for a deployed stack)"
    )


def test_a_second_run_says_the_stack_is_already_running(newcomer: RunningStack) -> None:
    second = subprocess.run(
        [str(Path(sys.executable).with_name("partnero-bridge")), "run"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BRIDGE_PORT": str(newcomer.port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr == (
        f"partnero-bridge run: the local stack is already running at {newcomer.url}: use it, "
        "stop it (Ctrl-C in its terminal), or set the BRIDGE_*_PORT variables "
        "(docs/local-stack.md) to run another\n"
    )


def test_no_stack_is_one_line() -> None:
    port = free_port()
    nothing = subprocess.run(
        [str(Path(sys.executable).with_name("partnero-bridge")), "dlq", "list"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BRIDGE_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nothing.returncode == 1
    assert nothing.stderr.startswith(
        f"partnero-bridge dlq: the local stack is not running (nothing answers at "
        f"http://127.0.0.1:{port})"
    )
    assert len(nothing.stderr.splitlines()) == 1
