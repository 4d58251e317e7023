"""Ecwid ingest (POST /webhooks/ecwid) in-process against moto: several client secrets, the
freshness window on eventCreated, configured stores, and webhooks of other stores parked
once per eventId within a cap, then replayed by `partnero-bridge parked replay`.

Ingest only: nothing here drains the work queue, so these tests do not depend on how
processing decides."""

from __future__ import annotations

import io
import json
import time
from argparse import Namespace
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import partnero_bridge
from partnero_bridge.envelope import QueueEnvelope
from partnero_bridge.processing import window_start
from partnero_bridge_cli import parked as parked_cli
from tests.support.ecwid import signed, webhook
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = pytest.mark.integration

STORE = 1003
OLD_CLIENT_SECRET = "ecwid-ingest-old-client-secret"
NEW_CLIENT_SECRET = "ecwid-ingest-new-client-secret"
STORE_TOKEN = "secret_ingest_store_token_1003"
HOUR = 3600
ORDER = {"id": "K8XTQ", "internalId": 516483487, "paymentStatus": "PAID"}


def environment(**extra: str) -> dict[str, str]:
    return {
        "PARTNERO_API_URL": "http://127.0.0.1:9/v1",  # never called: nothing is processed
        "ECWID_API_URL": "http://127.0.0.1:9/api/v3",
        "ECWID_CLIENT_SECRET": f"{OLD_CLIENT_SECRET},{NEW_CLIENT_SECRET}",
        "ECWID_STORE_TOKENS": json.dumps({str(STORE): STORE_TOKEN}),
        **extra,
    }


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessBridge]:
    with in_process_bridge(monkeypatch, environment()) as bridge:
        yield bridge


def send(bridge: InProcessBridge, body: dict[str, Any], secret: str = NEW_CLIENT_SECRET) -> Any:
    raw, headers = signed(body, secret)
    return bridge.call("POST", "/webhooks/ecwid", raw, headers)


def metrics(output: str) -> list[str]:
    """Names of the metrics the functions emitted (CloudWatch EMF lines on stdout)."""
    names: list[str] = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            names += [m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return names


def queued(bridge: InProcessBridge) -> list[QueueEnvelope]:
    return [
        QueueEnvelope.model_validate_json(m["Body"]) for m in bridge.messages("EcwidOrderQueue")
    ]


def parked_items(bridge: InProcessBridge) -> list[dict[str, Any]]:
    table = bridge.resources.refs["ParkedWebhooksTable"]
    items = bridge.dynamodb.scan(TableName=table)["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def put_secret(bridge: InProcessBridge, logical_id: str, value: dict[str, Any]) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=bridge.resources.refs[logical_id], SecretString=json.dumps(value)
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("secret", [OLD_CLIENT_SECRET, NEW_CLIENT_SECRET])
def test_a_signature_under_any_configured_client_secret_is_accepted(
    bridge: InProcessBridge, secret: str
) -> None:
    body = webhook("order.created", STORE, ORDER)
    answer = send(bridge, body, secret)

    assert (answer.status, answer.body) == (200, {"status": "accepted"})
    [envelope] = queued(bridge)
    assert envelope.delivery_id == f"ecwid-{body['eventId']}"
    assert envelope.payload == body


def test_webhook_secret_with_the_legacy_single_client_secret(bridge: InProcessBridge) -> None:
    put_secret(bridge, "EcwidWebhookSecret", {"client_secret": OLD_CLIENT_SECRET})

    assert send(bridge, webhook("order.created", STORE, ORDER), OLD_CLIENT_SECRET).status == 200
    assert send(bridge, webhook("order.created", STORE, ORDER), NEW_CLIENT_SECRET).status == 401


def test_local_stack_seeds_the_two_secrets_apart(bridge: InProcessBridge) -> None:
    client = boto3.client("secretsmanager")

    def value(logical_id: str) -> Any:
        arn = bridge.resources.refs[logical_id]
        return json.loads(client.get_secret_value(SecretId=arn)["SecretString"])

    assert value("EcwidWebhookSecret") == {"client_secrets": [OLD_CLIENT_SECRET, NEW_CLIENT_SECRET]}
    assert value("EcwidSecret") == {"store_tokens": {str(STORE): STORE_TOKEN}}


def test_ingest_never_reads_the_store_tokens(bridge: InProcessBridge) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId=bridge.resources.refs["EcwidSecret"], ForceDeleteWithoutRecovery=True
    )

    answer = send(bridge, webhook("order.created", STORE, ORDER))

    assert (answer.status, answer.body) == (200, {"status": "accepted"})


def test_no_client_secret_configured_refuses_like_a_wrong_signature(
    bridge: InProcessBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """Ecwid not connected (the deployed placeholder): a caller learns nothing from the
    answer and cannot cause a 5xx; the operator finds the cause in the log."""
    put_secret(bridge, "EcwidWebhookSecret", {"client_secrets": []})

    answer = send(bridge, webhook("order.created", STORE, ORDER))
    wrong = send(bridge, webhook("order.created", STORE, ORDER), "not-the-client-secret")

    assert (answer.status, answer.body["error"]) == (401, "invalid_signature")
    assert answer.body == wrong.body
    assert queued(bridge) == []
    assert "lists no client secret" in caplog.text


# ---------------------------------------------------------------- freshness


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(0, id="now"),
        pytest.param(30 * HOUR, id="redelivered-after-a-day-long-outage"),
        pytest.param(48 * HOUR - 60, id="just-inside-the-window"),
        pytest.param(-240, id="slightly-ahead-clock-skew"),
    ],
)
def test_fresh_webhooks_are_queued(bridge: InProcessBridge, age: int) -> None:
    answer = send(bridge, webhook("order.updated", STORE, ORDER, created=int(time.time()) - age))

    assert (answer.status, answer.body) == (200, {"status": "accepted"})
    assert len(queued(bridge)) == 1


@pytest.mark.parametrize("store", [STORE, 777], ids=["configured", "unconfigured"])
def test_stale_webhook_is_answered_2xx_counted_logged_and_not_queued(
    bridge: InProcessBridge,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    store: int,
) -> None:
    body = webhook("order.created", store, ORDER, created=int(time.time()) - 48 * HOUR - 60)

    answer = send(bridge, body)

    assert answer.status == 200
    assert (answer.body["status"], answer.body["reason"]) == ("refused", "stale")
    assert "not processed" in answer.body["message"]
    assert queued(bridge) == []
    assert bridge.messages("EcwidOrderDeadLetterQueue") == []
    assert parked_items(bridge) == []
    assert metrics(capsys.readouterr().out).count("StaleWebhook") == 1
    [record] = [r for r in caplog.records if "stale Ecwid webhook refused" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert vars(record)["event_id"] == body["eventId"]
    assert vars(record)["age_seconds"] > 48 * HOUR


def test_event_age_window_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment(ECWID_MAX_EVENT_AGE_SECONDS=str(2 * HOUR))
    with in_process_bridge(monkeypatch, env) as bridge:
        now = int(time.time())
        older = send(bridge, webhook("order.created", STORE, ORDER, created=now - 3 * HOUR))
        newer = send(bridge, webhook("order.created", STORE, ORDER, created=now - HOUR))
        assert older.body["status"] == "refused"
        assert newer.body["status"] == "accepted"
        assert len(queued(bridge)) == 1


def test_webhook_dated_in_the_future_is_a_422_so_ecwid_retries_it(
    bridge: InProcessBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    body = webhook("order.created", STORE, ORDER, created=int(time.time()) + 3600)

    answer = send(bridge, body)

    assert (answer.status, answer.body["error"]) == (422, "event_created_in_the_future")
    assert queued(bridge) == []
    assert metrics(capsys.readouterr().out).count("FutureWebhook") == 1


def test_freshness_is_never_checked_again_after_ingest(bridge: InProcessBridge) -> None:
    """Only ingest reads the window: what it accepted stays accepted through queue retries
    and DLQ or parked replays (the envelope keeps the original eventCreated)."""
    body = webhook("order.created", STORE, ORDER, created=int(time.time()) - 47 * HOUR)
    send(bridge, body)
    [envelope] = queued(bridge)
    assert envelope.payload["eventCreated"] == body["eventCreated"]
    package = Path(partnero_bridge.__file__).parent
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "max_event_age" in path.read_text(encoding="utf-8")
        or "_check_freshness" in path.read_text(encoding="utf-8")
    )
    assert readers == ["config.py", "ecwid/ingest.py"]


# ---------------------------------------------------------------- parking


def test_unconfigured_store_is_parked_once_per_event_id(
    bridge: InProcessBridge, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    body = webhook("order.created", 777, ORDER)

    answers = [send(bridge, body) for _ in range(3)]  # redelivered / replayed

    assert [(a.status, a.body) for a in answers] == [
        (200, {"status": "parked", "reason": "store_not_configured"})
    ] * 3
    assert queued(bridge) == []
    assert bridge.messages("EcwidOrderDeadLetterQueue") == []  # not a dead letter
    [item] = [i for i in parked_items(bridge) if i["pk"].startswith("webhook#")]
    assert item["pk"] == f"webhook#{body['eventId']}"
    assert (item["store_id"], item["event_type"], item["order_id"]) == (
        "777",
        "order.created",
        "K8XTQ",
    )
    assert int(item["expires_at"]) - int(item["parked_at"]) == 14 * 24 * HOUR
    envelope = QueueEnvelope.model_validate_json(item["envelope"])
    assert (envelope.delivery_id, envelope.payload) == (f"ecwid-{body['eventId']}", body)
    assert metrics(capsys.readouterr().out).count("ParkedWebhook") == 1
    assert "already parked" in caplog.text


def test_the_same_event_id_under_another_store_is_not_parked_twice(
    bridge: InProcessBridge,
) -> None:
    """storeId is not signed: a captured webhook re-sent with invented store ids parks once."""
    body = webhook("order.created", 777, ORDER)
    send(bridge, body)
    for other in (778, 779, 780):
        assert send(bridge, {**body, "storeId": other}).body["status"] == "parked"

    assert len([i for i in parked_items(bridge) if i["pk"].startswith("webhook#")]) == 1


def test_parking_is_capped_per_store(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with in_process_bridge(monkeypatch, environment(ECWID_PARKED_MAX_PER_STORE="2")) as bridge:
        answers = [send(bridge, webhook("order.created", 777, ORDER)).body for _ in range(4)]
        other_store = send(bridge, webhook("order.created", 888, ORDER)).body

        assert [a["status"] for a in answers] == ["parked", "parked", "dropped", "dropped"]
        assert other_store["status"] == "parked"
        stores = sorted(i["store_id"] for i in parked_items(bridge) if "store_id" in i)
        assert stores == ["777", "777", "888"]
        emitted = metrics(capsys.readouterr().out)
        assert emitted.count("ParkedWebhookDropped") == 2
        assert emitted.count("ParkedWebhook") == 3
        dropped = [r for r in caplog.records if "DROPPED" in r.getMessage()]
        assert len(dropped) == 2
        assert "cap of 2 parked webhooks" in dropped[0].getMessage()
        assert vars(dropped[0])["store_id"] == "777"


def test_parking_fails_closed_when_dynamodb_refuses(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not kept = not acknowledged: a 503, and Ecwid retries."""
    bridge.dynamodb.delete_table(TableName=bridge.resources.refs["ParkedWebhooksTable"])

    answer = send(bridge, webhook("order.created", 777, ORDER))

    assert (answer.status, answer.body["error"]) == (503, "temporarily_unavailable")


# ---------------------------------------------------------------- partnero-bridge parked


def parked(action: str, env: dict[str, str], **options: Any) -> tuple[int, str]:
    args = Namespace(
        action=action,
        store=options.get("store"),
        stack_name=options.get("stack_name"),
        json=options.get("json", False),
    )
    out = io.StringIO()
    code = parked_cli.run(args, out=out, clients=options.get("clients"), env=env)
    return code, out.getvalue()


def test_replay_sends_parked_webhooks_of_newly_configured_stores_to_the_work_queue(
    bridge: InProcessBridge,
) -> None:
    first = webhook("order.created", 777, ORDER)
    second = webhook("order.updated", 777, ORDER)
    elsewhere = webhook("order.created", 888, ORDER)
    for body in (first, second, elsewhere):
        assert send(bridge, body).body["status"] == "parked"

    code, listing = parked("list", {}, json=True)
    assert code == 0
    rows = json.loads(listing)
    assert sorted((r["store_id"], r["event_id"]) for r in rows) == sorted(
        [("777", first["eventId"]), ("777", second["eventId"]), ("888", elsewhere["eventId"])]
    )
    code, table = parked("list", {}, store="888")
    assert "EVENT ID" in table
    assert elsewhere["eventId"] in table
    assert first["eventId"] not in table

    # Store 777 configured since (its id listed, as the function would now read it).
    env = {"ECWID_STORE_IDS": f"{STORE},777"}
    code, out = parked("replay", env)
    assert code == 0
    assert out.startswith("replayed 2 parked webhook(s); 1 left parked")
    assert "888 (1)" in out

    messages = bridge.messages("EcwidOrderQueue")
    envelopes = {QueueEnvelope.model_validate_json(m["Body"]).delivery_id: m for m in messages}
    assert set(envelopes) == {f"ecwid-{first['eventId']}", f"ecwid-{second['eventId']}"}
    for body in (first, second):
        message = envelopes[f"ecwid-{body['eventId']}"]
        envelope = QueueEnvelope.model_validate_json(message["Body"])
        # Exactly the envelope ingest builds for a configured store.
        assert envelope.source.value == "ecwid"
        assert envelope.payload == body
        assert set(envelope.meta) == {"request_id"}
        attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        attributes.pop("retry_window_start")  # see the test of a long-parked webhook
        assert attributes == {
            "source": "ecwid",
            "delivery_id": envelope.delivery_id,
            "replayed": "parked",
        }
    remaining = [i for i in parked_items(bridge) if i["pk"].startswith("webhook#")]
    assert [i["store_id"] for i in remaining] == ["888"]

    # Nothing more for 777; 888 is still not configured.
    assert parked("replay", env)[1].startswith("replayed 0 parked webhook(s); 1 left parked")
    code, out = parked("replay", env, store="888")
    assert code == 1
    assert "store 888 is not in ECWID_STORE_IDS" in out


def test_a_webhook_parked_for_days_gets_a_whole_retry_window_when_replayed(
    bridge: InProcessBridge,
) -> None:
    # Parked five days ago (webhooks stay parked up to 14 days): its received_at is older
    # than the 72-hour retry window, so without a new window its first transient failure
    # after the replay would be dead-lettered at once.
    body = webhook("order.created", 777, ORDER)
    assert send(bridge, body).body["status"] == "parked"
    table = bridge.resources.refs["ParkedWebhooksTable"]
    (item,) = [i for i in bridge.dynamodb.scan(TableName=table)["Items"] if "envelope" in i]
    envelope = QueueEnvelope.model_validate_json(item["envelope"]["S"])
    days_ago = envelope.received_at - timedelta(days=5)
    item["envelope"]["S"] = envelope.model_copy(update={"received_at": days_ago}).model_dump_json()
    bridge.dynamodb.put_item(TableName=table, Item=item)

    before = datetime.now(UTC)
    code, out = parked("replay", {"ECWID_STORE_IDS": f"{STORE},777"})
    assert (code, out.startswith("replayed 1 parked webhook(s)")) == (0, True)

    (message,) = bridge.messages("EcwidOrderQueue")
    replayed = QueueEnvelope.model_validate_json(message["Body"])
    assert replayed.received_at == days_ago  # the body is kept as ingest built it
    sent = message["MessageAttributes"].get("retry_window_start", {}).get("StringValue")
    start = window_start(sent, replayed.received_at, datetime.now(UTC))
    assert before - timedelta(seconds=1) <= start <= datetime.now(UTC)


def test_replay_of_a_deployed_stack_reads_the_functions_store_ids(
    bridge: InProcessBridge,
) -> None:
    send(bridge, webhook("order.created", 777, ORDER))
    outputs = {
        "ParkedWebhooksTableName": bridge.resources.refs["ParkedWebhooksTable"],
        "EcwidOrderQueueUrl": bridge.queue_url("EcwidOrderQueue"),
        "EcwidOrderIngestFunctionName": "bridge-prod-EcwidOrderIngestFunction-abc",
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName="bridge-prod", TemplateBody=json.dumps(template)
    )

    class FakeLambda:
        def __init__(self, store_ids: str) -> None:
            self.store_ids = store_ids
            self.asked: list[str] = []

        def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
            self.asked.append(FunctionName)
            return {"Environment": {"Variables": {"ECWID_STORE_IDS": self.store_ids}}}

    def clients(lambda_client: FakeLambda) -> parked_cli.Clients:
        return parked_cli.Clients(
            sqs=boto3.client("sqs"),
            dynamodb=boto3.client("dynamodb"),
            cloudformation=lambda: boto3.client("cloudformation"),
            lambda_client=lambda: lambda_client,
        )

    # The local environment says 777 is configured; the deployed function does not.
    not_yet = FakeLambda("1003")
    code, out = parked(
        "replay", {"ECWID_STORE_IDS": "777"}, stack_name="bridge-prod", clients=clients(not_yet)
    )
    assert (code, not_yet.asked) == (0, ["bridge-prod-EcwidOrderIngestFunction-abc"])
    assert "replayed 0" in out
    assert "function bridge-prod-EcwidOrderIngestFunction-abc" in out

    code, out = parked(
        "replay", {}, stack_name="bridge-prod", clients=clients(FakeLambda("1003,777"))
    )
    assert out.startswith("replayed 1 parked webhook(s)")
    assert len(queued(bridge)) == 1
