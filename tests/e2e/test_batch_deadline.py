"""A full batch against a hanging Partnero cannot run the process function out of time.

The sign-up process function runs in the local stack's worker (its LocalContext counts down
the real time left; the worker's caller gives up after the timeout, as Lambda kills the
invocation), with a short timeout and Partnero calls shrunk to half a second. Partnero
(the sandbox, over real HTTP) hangs on every call. The batch stops before the deadline and
hands back the records it had no time for; once Partnero is back, every sign-up reaches it
exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.queues import send_to_queue
from partnero_bridge_cli.local.aws import client, create_resources
from partnero_bridge_cli.local.functions import Invocation, LocalFunction
from partnero_bridge_cli.local.pollers import QueuePoller
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.local.stack import function_environment, parameter_overrides
from partnero_bridge_cli.local.template import FunctionSpec, read_stack
from tests.e2e.conftest import PARTNERO_KEY
from tests.support.local_stack import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(60)]

RECORDS = 10
FUNCTION_TIMEOUT = 8  # seconds; deployed: 120
PARTNERO_TIMEOUT = 0.5  # seconds; a record's worst case: 0.5 connect + 0.5 read + 5 margin


@dataclasses.dataclass
class Harness:
    function: LocalFunction
    spec: FunctionSpec
    sqs: Any
    queue_url: str
    dead_letter_url: str
    poller: QueuePoller
    invocations: list[tuple[Invocation, float]]
    logs: list[str]

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def log_records(self, message: str) -> list[dict[str, Any]]:
        found = []
        for line in self.logs:
            if line.startswith("{") and f'"{message}"' in line:
                found.append(json.loads(line))
        return found


def _moto_server(port: int) -> subprocess.Popen[bytes]:
    """A moto server of its own (in this process moto's state is shared with mock_aws)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, "the moto server")
    return process


@pytest.fixture
def harness(partnero: PartneroSandbox) -> Iterator[Harness]:
    stack = read_stack(ROOT)
    [spec] = [
        f for f in stack.functions.values() if any(t.queue == "SignupQueue" for t in f.triggers)
    ]
    spec = dataclasses.replace(spec, timeout=FUNCTION_TIMEOUT)
    port = free_port()
    moto = _moto_server(port)
    moto_url = f"http://127.0.0.1:{port}"
    function: LocalFunction | None = None
    try:
        user_env = {
            "PARTNERO_API_URL": partnero.url,
            "PARTNERO_API_KEY": PARTNERO_KEY,
            "PARTNERO_TIMEOUT_SECONDS": str(PARTNERO_TIMEOUT),
            "BRIDGE_RETRY_BASE_SECONDS": "1",
            "BRIDGE_RETRY_MAX_SECONDS": "1",
        }
        parameters = parameter_overrides(stack, user_env)
        resources = create_resources(stack, parameters, moto_url, user_env)
        env = function_environment(
            spec, resources.resolver(parameters), user_env, moto_url, ROOT / "layers" / "common"
        )
        logs: list[str] = []
        function = LocalFunction(spec, env, 1, logs.append)
        function.start()
        invocations: list[tuple[Invocation, float]] = []

        def invoke(_name: str, event: dict[str, Any]) -> Invocation:
            started = time.monotonic()
            assert function is not None
            outcome = function.invoke(event)
            invocations.append((outcome, time.monotonic() - started))
            return outcome

        sqs = client("sqs", moto_url)
        queue_url = resources.refs["SignupQueue"]
        poller = QueuePoller(
            sqs,
            queue_url,
            resources.attributes[("SignupQueue", "Arn")],
            spec.logical_id,
            10,
            invoke,
            logs.append,
        )
        yield Harness(
            function,
            spec,
            sqs,
            queue_url,
            resources.refs["SignupDeadLetterQueue"],
            poller,
            invocations,
            logs,
        )
    finally:
        if function is not None:
            function.stop()
        moto.terminate()
        moto.wait(timeout=10)


def signup(n: int) -> QueueEnvelope:
    email = f"deadline{n}@example.com"
    payload = {"customer_key": email, "partner_key": "demo-partner", "email": email}
    return QueueEnvelope.new(
        Source.SIGNUP, f"signup-deadline-{n}", {**payload, "trusted": True}, {"trusted": "True"}
    )


def customer_posts(partnero: PartneroSandbox) -> list[Any]:
    return [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/customers")]


def test_a_batch_against_a_hanging_partnero_stops_before_its_deadline(
    harness: Harness, partnero: PartneroSandbox, figures: Any
) -> None:
    # Partnero accepts the connection and answers nothing for 3 s (then a 503, never a
    # customer): every call waits out the client's read timeout.
    partnero.inject_fault(Fault(delay_seconds=3, status=503, count=-1))
    for n in range(RECORDS):
        send_to_queue(harness.sqs, harness.queue_url, signup(n))

    assert harness.poller.poll_once() == 0  # one batch of 10, every record reported failed
    [(first, took)] = harness.invocations
    assert first.error is None, first.error  # no "Task timed out"
    assert took < FUNCTION_TIMEOUT - 1
    failed = {item["itemIdentifier"] for item in first.payload["batchItemFailures"]}
    assert len(failed) == RECORDS

    attempted = harness.log_records("delivery will be retried")
    [left] = harness.log_records(
        "records left for a later invocation: too little time left for them"
    )
    # Some records were tried (each waiting out the timeout), the rest not tried at all.
    assert 1 <= len(attempted) < RECORDS
    assert left["unattempted"] == RECORDS - len(attempted)
    assert left["attempted"] == len(attempted)
    wait_for(lambda: len(customer_posts(partnero)) == len(attempted), 10, "the hung calls")
    # Nothing is lost or parked: all 10 are still on the work queue, none in the DLQ.
    assert harness.depth(harness.queue_url) == RECORDS
    assert harness.depth(harness.dead_letter_url) == 0

    partnero.clear_faults()
    recovered = len(partnero.requests())
    deadline = time.monotonic() + 30
    while harness.depth(harness.queue_url) and time.monotonic() < deadline:
        harness.poller.poll_once()
    assert harness.depth(harness.queue_url) == 0
    assert harness.depth(harness.dead_letter_url) == 0
    assert all(outcome.error is None for outcome, _ in harness.invocations)
    assert max(took for _, took in harness.invocations) < FUNCTION_TIMEOUT - 1

    after = Counter(
        r.body["key"]
        for r in partnero.requests()[recovered:]
        if (r.method, r.path) == ("POST", "/v1/customers")
    )
    assert after == Counter({f"deadline{n}@example.com": 1 for n in range(RECORDS)})
    assert len(partnero.customers()) == RECORDS
    figures(
        records=RECORDS,
        function_timeout_s=FUNCTION_TIMEOUT,
        partnero_timeout_s=PARTNERO_TIMEOUT,
        first_invocation_s=round(took, 2),
        tried_in_first_batch=len(attempted),
        handed_back_untried=RECORDS - len(attempted),
        invocations=len(harness.invocations),
        dead_lettered=0,
    )
