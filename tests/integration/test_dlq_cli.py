"""`partnero-bridge dlq`: list, replay and purge dead letters (moto in-process)."""

from __future__ import annotations

import io
import json
from argparse import Namespace
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from partnero_bridge_cli.dlq import DEFAULT_RATE, Tools, run
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.queue_scan import Polling
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.signup import signed_signup

pytestmark = pytest.mark.integration

HMAC_SECRET = "test-signup-hmac-secret-51c7"

# Short polls, one empty receive ending a scan: moto answers every receive from all its
# messages, so here this reads as completely as long polling, without its waits
# (test_dlq_scale reads 1,000 dead letters with long polling).
QUICK = Tools(polling=Polling(wait_seconds=0, empty_polls=1))


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "SIGNUP_HMAC_SECRET": HMAC_SECRET,
        "BRIDGE_MAX_RECEIVES": "2",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def dlq(*argv: str, answer: str = "n", **options: Any) -> tuple[int, str]:
    args = Namespace(
        action=argv[0],
        source=options.get("source"),
        id=options.get("id"),
        stack_name=options.get("stack_name"),
        json="--json" in argv,
        yes="--yes" in argv,
        rate=options.get("rate", DEFAULT_RATE),
        quiet="--quiet" in argv,
    )
    out = io.StringIO()
    code = run(args, out=out, ask=lambda _prompt: answer, err=io.StringIO(), tools=QUICK)
    return code, out.getvalue()


def fail_signups(bridge: InProcessBridge, sandbox: PartneroSandbox, *emails: str) -> None:
    sandbox.inject_fault(Fault(status=500, count=-1))
    for email in emails:
        body, headers = signed_signup({"email": email, "partner_key": "demo-partner"}, HMAC_SECRET)
        assert bridge.call("POST", "/signup", body, headers).status == 202
    bridge.drain("signup")
    sandbox.clear_faults()


def test_list_shows_each_dead_letter_with_its_reason(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    fail_signups(bridge, sandbox, "a@example.com", "b@example.com")
    code, out = dlq("list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 2
    for row in rows:
        assert row["source"] == "signup"
        assert row["delivery_id"].startswith("signup-")
        assert row["receive_count"] == 2
        assert "500" in row["error"]
        assert row["error_kind"] == "retryable"
        assert row["received_at"]
    # Listing consumed nothing.
    assert bridge.queue_depth("SignupDeadLetterQueue") == 2
    code, table = dlq("list", source="signup")
    assert "DELIVERY ID" in table
    assert table.count("signup-") == 2


def test_replay_processes_every_dead_letter_exactly_once(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    fail_signups(bridge, sandbox, "a@example.com", "b@example.com", "c@example.com")
    assert sandbox.customers() == []
    code, out = dlq("replay")
    assert (code, out.strip()) == (0, "replayed 3 message(s): signup 3, ecwid 0, stripe 0")
    bridge.drain("signup")
    assert sorted(c["key"] for c in sandbox.customers()) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert bridge.queue_depth("SignupDeadLetterQueue") == 0
    code, out = dlq("replay")
    assert out.startswith("replayed 0 ")


def test_replay_one_by_delivery_id(bridge: InProcessBridge, sandbox: PartneroSandbox) -> None:
    fail_signups(bridge, sandbox, "a@example.com", "b@example.com")
    _code, out = dlq("list", "--json")
    first = json.loads(out)[0]
    dlq("replay", id=first["delivery_id"])
    bridge.drain("signup")
    assert len(sandbox.customers()) == 1
    assert bridge.queue_depth("SignupDeadLetterQueue") == 1


def test_purge_asks_first(bridge: InProcessBridge, sandbox: PartneroSandbox) -> None:
    fail_signups(bridge, sandbox, "a@example.com")
    code, out = dlq("purge", answer="n")
    assert (code, out.strip()) == (1, "nothing deleted")
    assert bridge.queue_depth("SignupDeadLetterQueue") == 1
    code, out = dlq("purge", answer="y")
    assert (code, out.strip()) == (0, "deleted 1 message(s)")
    assert bridge.queue_depth("SignupDeadLetterQueue") == 0
    fail_signups(bridge, sandbox, "b@example.com")
    assert dlq("purge", "--yes")[0] == 0
    assert bridge.queue_depth("SignupDeadLetterQueue") == 0


def test_deployed_stack_is_found_through_its_outputs(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """With --stack-name the queue URLs come from CloudFormation outputs."""
    fail_signups(bridge, sandbox, "a@example.com")
    outputs = {
        f"{name}{kind}": {"Value": bridge.queue_url(f"{name}{queue}")}
        for name in ("Signup", "EcwidOrder", "StripeEvent")
        for kind, queue in (("QueueUrl", "Queue"), ("DeadLetterQueueUrl", "DeadLetterQueue"))
    }
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    boto3.client("cloudformation").create_stack(
        StackName="bridge-prod", TemplateBody=json.dumps(template)
    )
    code, out = dlq("list", "--json", stack_name="bridge-prod", source="signup")
    assert code == 0
    assert len(json.loads(out)) == 1
