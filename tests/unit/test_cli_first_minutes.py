"""What a new user meets first with the CLI: every mistake of theirs (a file that is not
JSON, an order file sent as a webhook, a window in the future, a port that is no number, a
profile that does not exist, a stack that is not running or another program on its port)
is one line saying what is wrong, never a traceback, and no line asks to export anything."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from partnero_bridge.stripe.client import NoSuchObject
from partnero_bridge_cli import main as cli
from partnero_bridge_cli.dlq import describe_error
from partnero_bridge_cli.explain import StripeId, _stripe_failure
from partnero_bridge_cli.local import stack as local_stack
from partnero_bridge_cli.local.aws import client
from partnero_bridge_cli.reconcile import parse_when
from partnero_bridge_cli.send import find_sample, send
from partnero_bridge_cli.stack_settings import reach_local_stack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def other_program(tmp_path: Path) -> Iterator[int]:
    """Something else on the gateway's port: a static file server answering HTML."""
    (tmp_path / "index.html").write_text("<html>" + "x" * 5000 + "</html>")

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# -- dlq and parked: the local stack's queues, the region -----------------------------------


def test_queues_missing_at_an_endpoint_of_ones_own_say_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    missing = ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no"}},
        "GetQueueUrl",
    )

    line = describe_error(missing, None)

    assert "export" not in line
    assert line.startswith(
        "the local stack's queues are not at http://127.0.0.1:4566 (eu-west-1): a wrong "
        "endpoint or region; unset AWS_ENDPOINT_URL to let the command find the running "
        "local stack"
    )


def test_aws_region_is_the_region_of_a_deployed_stacks_clients() -> None:
    env = {"AWS_REGION": "us-east-1"}
    assert reach_local_stack("partnero-bridge-prod", env, io.StringIO()) is None
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    # A region boto3 already reads is left as it is.
    both = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    reach_local_stack("partnero-bridge-prod", both, io.StringIO())
    assert both["AWS_DEFAULT_REGION"] == "eu-west-1"


# -- ports and profiles --------------------------------------------------------------------


def test_a_gateway_port_that_is_no_number_is_one_line_as_make_run_says() -> None:
    problem = reach_local_stack(None, {"BRIDGE_PORT": "abc"}, io.StringIO())
    assert problem == (
        "BRIDGE_PORT='abc' is not a whole number from 0 to 65535, or pass --stack-name for "
        "a deployed stack"
    )
    with pytest.raises(local_stack.StackRefused, match=r"^BRIDGE_PORT='abc' is not a whole"):
        local_stack.StackConfig.from_env(ROOT, {"BRIDGE_PORT": "abc"})


def test_a_profile_is_set_aside_before_the_local_stack_builds_a_client(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile-here")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("BRIDGE_PORT", "abc")  # stops `run` before anything starts
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    assert local_stack.run(ROOT) == 1

    assert "AWS_PROFILE" not in os.environ
    client("sqs", "http://127.0.0.1:1")  # no ProfileNotFound
    assert capsys.readouterr().err.splitlines() == [
        "partnero-bridge run: AWS_PROFILE not used: the local stack runs on its own emulated "
        "AWS account (moto)",
        "partnero-bridge run: BRIDGE_PORT='abc' is not a whole number from 0 to 65535",
    ]


# -- reconcile and backfill: the window ------------------------------------------------------


@pytest.mark.parametrize("command", ["reconcile", "backfill"])
def test_a_window_starting_in_the_future_is_one_line_and_status_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--source", "stripe", "--since", "2999-01-01"]) == 2
    assert capsys.readouterr().err == (
        f"partnero-bridge {command}: --since is in the future (the window ends now without "
        "--until)\n"
    )


def test_unix_seconds_need_nine_digits_and_workers_at_least_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(Exception, match="Unix seconds of 9 digits or more"):
        parse_when("1")
    for command in ("reconcile", "backfill"):
        with pytest.raises(SystemExit) as stopped:
            cli.main([command, "--source", "stripe", "--since", "2026-01-01", "--workers", "0"])
        assert stopped.value.code == 2
        assert "argument --workers: must be 1 or more" in capsys.readouterr().err


# -- send --------------------------------------------------------------------------------------


def test_a_file_that_is_not_json_names_the_file_and_where(tmp_path: Path) -> None:
    broken = tmp_path / "mine.json"
    broken.write_text('{\n  "email": "a@example.com",\n}\n')
    with pytest.raises(SystemExit) as stopped:
        find_sample(ROOT, str(broken))
    assert str(stopped.value) == (
        f"partnero-bridge send: {broken} is not valid JSON: Illegal trailing comma before "
        "end of object at line 2, column 27"
    )


def test_an_ecwid_order_is_refused_with_the_webhook_to_send() -> None:
    with pytest.raises(SystemExit) as stopped:
        find_sample(ROOT, "ecwid/orders/cancelled")
    assert str(stopped.value) == (
        "partnero-bridge send: events/ecwid/orders/cancelled.json is an Ecwid order (the "
        "fake Ecwid API serves it when a webhook names it), not a webhook: send "
        "ecwid/webhooks/order-deleted instead"
    )


def test_send_without_a_stack_says_only_that(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = a_closed_port()
    monkeypatch.delenv("BRIDGE_URL", raising=False)
    monkeypatch.setenv("BRIDGE_PORT", str(port))
    out = io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        send(ROOT, "stripe/invoice.paid", None, False, False, out=out)
    assert str(stopped.value) == (
        f"partnero-bridge send: the local stack is not running (nothing answers at "
        f"http://127.0.0.1:{port}): start it with `make run` (BRIDGE_PORT if it runs on "
        "another port)"
    )
    assert out.getvalue() == ""  # no note about the fake Stripe API first


def test_send_to_another_program_on_the_port_is_one_line(
    monkeypatch: pytest.MonkeyPatch, other_program: int
) -> None:
    monkeypatch.delenv("BRIDGE_URL", raising=False)
    monkeypatch.setenv("BRIDGE_PORT", str(other_program))
    out = io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        send(ROOT, "signup", None, False, False, out=out)
    assert str(stopped.value) == (
        f"partnero-bridge send: what answers at http://127.0.0.1:{other_program} is not the "
        "local stack (/_local/stack: 404, text/html): set BRIDGE_PORT (or BRIDGE_URL) to "
        "where the local stack runs, or start it on a free port: `BRIDGE_PORT=3001 make run`"
    )
    assert out.getvalue() == ""


def test_send_to_a_url_of_ones_own_shows_no_page(other_program: int) -> None:
    out = io.StringIO()
    url = f"http://127.0.0.1:{other_program}"
    assert send(ROOT, "signup", url, False, False, out=out, wait_seconds=None) == 1
    answer = out.getvalue().splitlines()[-1]
    assert answer.startswith("-> 501 in ")
    assert "<html" not in out.getvalue().lower()
    assert answer.endswith("(not the bridge's JSON)")


def test_send_with_a_gateway_port_that_is_no_number_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRIDGE_URL", raising=False)
    monkeypatch.setenv("BRIDGE_PORT", "abc")
    with pytest.raises(SystemExit, match=r"^partnero-bridge send: BRIDGE_PORT='abc' is not"):
        send(ROOT, "signup", None, False, False, out=io.StringIO())


# -- explain -----------------------------------------------------------------------------------


def test_an_id_stripe_does_not_have_is_said_to_not_exist() -> None:
    asked = StripeId("pi_3RONEOFFGrace", "payment_intent")
    line = _stripe_failure(asked, NoSuchObject("payment_intents", "pi_3RONEOFFGrace"))
    assert line == (
        "Stripe: payment intent pi_3RONEOFFGrace does not exist in this Stripe account and "
        "mode (check the id; or the key is of another account or mode)"
    )
    # Another object missing (one the payment names) is the failure as it came.
    other = _stripe_failure(asked, NoSuchObject("charges", "ch_1"))
    assert other.startswith("Stripe could not be read: configuration: Stripe has no charges")
