"""`partnero-bridge dlq` on large DLQs, against moto (in-process), as SQS behaves at scale:
long polling until empty, each message once, the newest receipt handle, a paced replay.

Some tests put a thin stand-in in front of the SQS client to make SQS do what it does
under load and moto never does by itself: refuse some batch entries, refuse an outdated
receipt handle, give a message out again because its hold lapsed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from argparse import Namespace
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import moto.core.utils as moto_utils
import moto.sqs.models as moto_sqs_models
import pytest

from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.queues import DeliveryQueues
from partnero_bridge_cli.dlq import Tools, run
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.queue_scan import Polling
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = pytest.mark.integration

WORK, DEAD = "SignupQueue", "SignupDeadLetterQueue"
# Long polls of one second (the shortest), two empty ones ending a scan; one for the
# smaller tests, to keep them quick.
LONG_POLLING = Polling(wait_seconds=1, empty_polls=2)
QUICK_POLLING = Polling(wait_seconds=1, empty_polls=1)


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    quick_moto_clock(monkeypatch)
    env = {"PARTNERO_API_URL": sandbox.url, "PARTNERO_API_KEY": SANDBOX_KEY}
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def quick_moto_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's SQS reads the time through datetime arithmetic several times per message
    for every message it returns (it recounts the queue each time): with 1,000 messages
    that is minutes. The same seconds since the epoch, read directly, keeps it to seconds."""

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else moto_utils.unix_time(dt)

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else moto_utils.unix_time_millis(dt)

    monkeypatch.setattr(moto_sqs_models, "unix_time", unix_time, raising=False)
    monkeypatch.setattr(moto_sqs_models, "unix_time_millis", unix_time_millis, raising=False)


class VirtualTime:
    """A clock whose sleeps pass at once: real time plus every second slept."""

    def __init__(self) -> None:
        self.slept = 0.0

    def clock(self) -> float:
        return time.monotonic() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


def dead_letter(bridge: InProcessBridge, count: int) -> list[str]:
    """``count`` sign-ups dead-lettered as the bridge does it; their delivery ids."""
    queues = DeliveryQueues(bridge.sqs, bridge.queue_url(WORK), bridge.queue_url(DEAD))
    ids = []
    for n in range(count):
        envelope = QueueEnvelope.new(
            Source.SIGNUP,
            f"signup-scale-{n:05d}",
            {"email": f"user{n}@example.com", "partner_key": "demo-partner"},
        )
        queues.dead_letter(
            envelope.model_dump_json(),
            source="signup",
            delivery_id=envelope.delivery_id,
            error="Partnero answered 503",
            error_kind="retryable",
            receive_count=7,
            retry_window_start=envelope.received_at.isoformat(),
        )
        ids.append(envelope.delivery_id)
    return ids


def dlq(
    action: str, sqs: Any = None, tools: Tools | None = None, **options: Any
) -> tuple[int, str, str]:
    args = Namespace(
        action=action,
        source=options.get("source", "signup"),
        id=options.get("id"),
        stack_name=None,
        json=options.get("json", False),
        yes=True,
        rate=options.get("rate", 0),
        quiet=options.get("quiet", False),
    )
    out, err = io.StringIO(), io.StringIO()
    code = run(args, out=out, err=err, sqs=sqs, tools=tools or Tools(polling=QUICK_POLLING))
    return code, out.getvalue(), err.getvalue()


def depth(bridge: InProcessBridge, logical_id: str) -> tuple[int, int]:
    """(visible, held invisible) messages of a queue."""
    attributes = bridge.sqs.get_queue_attributes(
        QueueUrl=bridge.queue_url(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def delivered(bridge: InProcessBridge) -> list[dict[str, Any]]:
    """Every message that reached the sign-up work queue (read and deleted)."""
    url = bridge.queue_url(WORK)
    found: list[dict[str, Any]] = []
    while batch := bridge.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", []):
        found += batch
        bridge.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )
    return found


class Stand:
    """An SQS client as seen through a load: calls pass to moto unless a test says
    otherwise. It records every receive and send, and, as SQS does, refuses a receipt
    handle older than the newest one it gave out for that message."""

    def __init__(self, sqs: Any, time_source: VirtualTime | None = None) -> None:
        self._sqs = sqs
        self._time = time_source
        self.newest: dict[str, str] = {}  # message id -> newest receipt handle
        self.message_of: dict[str, str] = {}  # receipt handle -> message id
        self.receives: Counter[str] = Counter()
        self.sends: list[tuple[float, int]] = []  # (clock, messages) of each batch sent
        self.send_refusals: dict[str, dict[str, Any]] = {}  # delivery id -> Failed entry
        self.flaky_sends: Counter[str] = Counter()  # delivery id -> SQS-side refusals left
        self.delete_refusals: dict[str, dict[str, Any]] = {}  # message id -> Failed entry
        # Deletes answered as done but not done, as SQS does for an outdated handle.
        self.ignored_deletes: set[str] = set()
        self.receive_delay = 0.0
        self.in_flight_limit_reached = False
        self.after_receive: list[Any] = []
        self.after_send: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    # -- receiving ----------------------------------------------------------------------
    def receive_message(self, **params: Any) -> Any:
        if self.receive_delay:
            time.sleep(self.receive_delay)
        if self.in_flight_limit_reached:
            return {"Messages": []}  # what a long poll answers at the in-flight limit
        answer = self._sqs.receive_message(**params)
        for message in answer.get("Messages", []):
            self.newest[message["MessageId"]] = message["ReceiptHandle"]
            self.message_of[message["ReceiptHandle"]] = message["MessageId"]
            self.receives[message["MessageId"]] += 1
        for hook in list(self.after_receive):
            hook(params["QueueUrl"], answer.get("Messages", []))
        return answer

    def lapse(self, queue_url: str, message_ids: list[str]) -> None:
        """Make messages visible again behind the command's back (its hold lapsed)."""
        for message_id in message_ids:
            self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=self.newest[message_id], VisibilityTimeout=0
            )

    # -- receipt handles ----------------------------------------------------------------
    def _stale(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        handle = entry["ReceiptHandle"]
        if self.newest.get(self.message_of.get(handle, "")) == handle:
            return None
        return {
            "Id": entry["Id"],
            "SenderFault": True,
            "Code": "ReceiptHandleIsInvalid",
            "Message": "The receipt handle has expired.",
        }

    def _batch(self, call: Any, refusals: dict[str, Any], **params: Any) -> Any:
        failed = []
        passed = []
        for entry in params["Entries"]:
            message_id = self.message_of.get(entry["ReceiptHandle"], "")
            refusal = self._stale(entry) or refusals.get(message_id)
            if refusal is not None:
                failed.append({**refusal, "Id": entry["Id"]})
            else:
                passed.append(entry)
        answer = call(**{**params, "Entries": passed}) if passed else {"Successful": []}
        return {
            "Successful": answer.get("Successful", []),
            "Failed": answer.get("Failed", []) + failed,
        }

    def change_message_visibility_batch(self, **params: Any) -> Any:
        return self._batch(self._sqs.change_message_visibility_batch, {}, **params)

    def delete_message_batch(self, **params: Any) -> Any:
        ignored = [
            entry
            for entry in params["Entries"]
            if self.message_of.get(entry["ReceiptHandle"]) in self.ignored_deletes
        ]
        rest = [entry for entry in params["Entries"] if entry not in ignored]
        answer = (
            self._batch(
                self._sqs.delete_message_batch, self.delete_refusals, **{**params, "Entries": rest}
            )
            if rest
            else {"Successful": [], "Failed": []}
        )
        answer["Successful"] += [{"Id": entry["Id"]} for entry in ignored]
        return answer

    # -- sending ------------------------------------------------------------------------
    def send_message_batch(self, **params: Any) -> Any:
        now = self._time.clock() if self._time else time.monotonic()
        failed, passed = [], []
        for entry in params["Entries"]:
            delivery_id = entry["MessageAttributes"]["delivery_id"]["StringValue"]
            if delivery_id in self.send_refusals:
                failed.append({**self.send_refusals[delivery_id], "Id": entry["Id"]})
            elif self.flaky_sends[delivery_id] > 0:
                self.flaky_sends[delivery_id] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                passed.append(entry)
        answer = (
            self._sqs.send_message_batch(**{**params, "Entries": passed})
            if passed
            else {"Successful": []}
        )
        self.sends.append((now, len(answer.get("Successful", []))))
        took = {entry["Id"] for entry in answer.get("Successful", [])}
        for hook in self.after_send:
            hook([entry for entry in passed if entry["Id"] in took])
        return {
            "Successful": answer.get("Successful", []),
            "Failed": answer.get("Failed", []) + failed,
        }


# -- 1,000 dead letters -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_thousand_dead_letters_listed_once_and_replayed_once_each(
    bridge: InProcessBridge, figures: Any
) -> None:
    started = time.monotonic()
    window_before = datetime.now(UTC)
    ids = dead_letter(bridge, 1000)
    stand = Stand(bridge.sqs)

    code, out, err = dlq("list", stand, Tools(polling=LONG_POLLING), json=True)
    rows = json.loads(out)
    assert code == 0
    assert len(rows) == 1000
    assert sorted(row["delivery_id"] for row in rows) == ids
    assert len({row["message_id"] for row in rows}) == 1000
    assert err.strip() == "listed 1000 message(s): signup 1000"
    # Nothing was consumed, and nothing stays hidden after the listing.
    assert depth(bridge, DEAD) == (1000, 0)
    assert max(stand.receives.values()) == 1

    # Replay at the default 50 messages a second, its waits passing in virtual time.
    virtual = VirtualTime()
    replay_started = virtual.clock()
    code, out, _err = dlq(
        "replay",
        stand,
        Tools(polling=LONG_POLLING, clock=virtual.clock, sleep=virtual.sleep),
        rate=50,
    )
    paced = virtual.clock() - replay_started
    assert (code, out.strip()) == (0, "replayed 1000 message(s): signup 1000")
    assert depth(bridge, DEAD) == (0, 0)
    arrived = delivered(bridge)
    delivery_ids = [m["MessageAttributes"]["delivery_id"]["StringValue"] for m in arrived]
    assert sorted(delivery_ids) == ids  # each exactly once
    for message in arrived:
        attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        envelope = QueueEnvelope.model_validate_json(message["Body"])
        assert attributes["delivery_id"] == envelope.delivery_id
        assert attributes["source"] == "signup"
        window = datetime.fromisoformat(attributes["retry_window_start"])
        assert window.utcoffset() is not None
        assert window_before <= window <= datetime.now(UTC)
    # 1,000 messages at 50 a second: at least 19.8 s (the first batch goes at once).
    assert paced >= (1000 - 10) / 50
    elapsed = time.monotonic() - started
    figures(
        dead_letters=1000,
        listed=len(rows),
        replayed=len(arrived),
        distinct_delivery_ids=len(set(delivery_ids)),
        replay_seconds_at_50_per_second=round(paced, 1),
        wall_seconds=round(elapsed, 1),
    )


# -- receipt handles and holds ----------------------------------------------------------


def test_a_message_given_out_again_is_listed_once_and_released_with_its_newest_handle(
    bridge: InProcessBridge,
) -> None:
    ids = dead_letter(bridge, 60)
    stand = Stand(bridge.sqs)
    first: list[str] = []

    def lapse_first_batch(queue_url: str, messages: list[dict[str, Any]]) -> None:
        if not first:
            first.extend(m["MessageId"] for m in messages)
        elif sum(stand.receives.values()) >= 30:
            stand.after_receive.clear()
            stand.lapse(queue_url, first)

    stand.after_receive.append(lapse_first_batch)
    code, out, _err = dlq("list", stand, json=True)
    assert code == 0
    assert sorted(row["delivery_id"] for row in json.loads(out)) == ids
    assert all(stand.receives[m] == 2 for m in first)  # really given out twice
    # Every message visible again at once: released with the newest handles (SQS refuses
    # an old one, which would have left the message hidden for the whole hold).
    assert depth(bridge, DEAD) == (60, 0)


@pytest.mark.parametrize("delete_answer", ["refused", "ignored"])
def test_a_message_given_out_again_during_replay_is_sent_once(
    bridge: InProcessBridge, delete_answer: str
) -> None:
    ids = dead_letter(bridge, 40)
    stand = Stand(bridge.sqs)
    victims: list[str] = []

    def refuse_then_lapse(queue_url: str, messages: list[dict[str, Any]]) -> None:
        # The first batch's deletes fail, as with an outdated handle (refused, or answered
        # as done and not done), and the messages come out again: the command must
        # delete, not send, them then.
        if not victims and messages:
            victims.extend(m["MessageId"] for m in messages[:3])
            for message_id in victims:
                if delete_answer == "ignored":
                    stand.ignored_deletes.add(message_id)
                    continue
                stand.delete_refusals[message_id] = {
                    "SenderFault": True,
                    "Code": "ReceiptHandleIsInvalid",
                    "Message": "The receipt handle has expired.",
                }
        elif victims:
            stand.delete_refusals.clear()
            stand.ignored_deletes.clear()
            stand.after_receive.clear()
            stand.lapse(queue_url, victims)

    stand.after_receive.append(refuse_then_lapse)
    code, out, _err = dlq("replay", stand)
    assert (code, out.strip()) == (0, "replayed 40 message(s): signup 40")
    assert all(stand.receives[m] == 2 for m in victims)
    assert (
        sorted(m["MessageAttributes"]["delivery_id"]["StringValue"] for m in delivered(bridge))
        == ids
    )
    assert depth(bridge, DEAD) == (0, 0)


def test_a_sent_message_sqs_will_not_delete_is_hidden_and_not_sent_again(
    bridge: InProcessBridge,
) -> None:
    ids = dead_letter(bridge, 12)
    stand = Stand(bridge.sqs)
    stuck: list[str] = []

    def refuse_one_delete(_queue_url: str, messages: list[dict[str, Any]]) -> None:
        if messages and not stuck:
            stuck.append(messages[0]["MessageId"])
            stand.delete_refusals[stuck[0]] = {
                "SenderFault": False,
                "Code": "InternalError",
                "Message": "We encountered an internal error.",
            }

    stand.after_receive.append(refuse_one_delete)
    code, out, _err = dlq("replay", stand)
    assert code == 1
    assert out.splitlines()[0] == "replayed 12 message(s): signup 12"
    assert out.splitlines()[1].startswith("replayed, but SQS refused to delete them from the DLQ")
    assert out.splitlines()[1].endswith(": 1 message(s)")
    assert "signup-scale-00000  InternalError" in out
    assert len(delivered(bridge)) == 12
    # Still in the DLQ, but hidden: a rerun right away sends nothing twice.
    assert depth(bridge, DEAD) == (0, 1)
    stand.delete_refusals.clear()
    code, out, _err = dlq("replay", stand)
    assert (code, out.strip()) == (0, "replayed 0 message(s): signup 0")
    assert delivered(bridge) == []
    assert len(ids) == 12


def test_holds_are_extended_while_a_long_listing_runs(bridge: InProcessBridge) -> None:
    """A 2-second hold and a listing of about 3 seconds: without extending the holds the
    first messages would come out again before the scan ends."""
    ids = dead_letter(bridge, 100)
    stand = Stand(bridge.sqs)
    stand.receive_delay = 0.2
    tools = Tools(polling=Polling(wait_seconds=1, empty_polls=1, hold_seconds=2))
    started = time.monotonic()
    code, out, _err = dlq("list", stand, tools, json=True)
    assert time.monotonic() - started > 2.5
    assert code == 0
    assert sorted(row["delivery_id"] for row in json.loads(out)) == ids
    assert set(stand.receives.values()) == {1}
    assert depth(bridge, DEAD) == (100, 0)


def test_messages_sqs_counts_but_never_gives_out_are_reported(bridge: InProcessBridge) -> None:
    """At SQS's in-flight limit a long poll answers nothing, without an error: the command
    must not take that for an empty queue."""
    dead_letter(bridge, 5)
    stand = Stand(bridge.sqs)
    stand.in_flight_limit_reached = True
    tools = Tools(polling=Polling(wait_seconds=1, empty_polls=1, settle_seconds=1))
    code, out, err = dlq("list", stand, tools, json=True)
    assert code == 1
    assert json.loads(out) == []
    assert "signup: SQS still counts about 5 visible message(s) that no receive returned" in err
    code, out, err = dlq("replay", stand, tools)
    assert code == 1
    assert out.strip() == "replayed 0 message(s): signup 0"
    assert "about 5 visible message(s)" in err
    assert depth(bridge, DEAD) == (5, 0)


def test_two_dead_letters_of_one_delivery_from_before_the_replay_are_both_sent(
    bridge: InProcessBridge,
) -> None:
    """Copies already in the DLQ are each a message to replay (processing makes the
    second one a no-op); only what this replay itself brought back is held back."""
    ids = dead_letter(bridge, 3) + dead_letter(bridge, 1)  # signup-scale-00000 twice
    code, out, _err = dlq("replay")
    assert (code, out.strip()) == (0, "replayed 4 message(s): signup 4")
    assert sorted(
        m["MessageAttributes"]["delivery_id"]["StringValue"] for m in delivered(bridge)
    ) == sorted(ids)
    assert depth(bridge, DEAD) == (0, 0)


# -- refusals and pacing ----------------------------------------------------------------


def test_refused_sends_stay_in_the_dlq_and_are_reported(bridge: InProcessBridge) -> None:
    ids = dead_letter(bridge, 50)
    stand = Stand(bridge.sqs)
    refused = ids[5:10]
    for delivery_id in refused:
        stand.send_refusals[delivery_id] = {
            "SenderFault": True,
            "Code": "InvalidMessageContents",
            "Message": "Invalid binary character",
        }
    # SQS-side refusals are tried again and go through.
    stand.flaky_sends.update({ids[20]: 1, ids[21]: 2})
    code, out, _err = dlq("replay", stand)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "replayed 45 message(s): signup 45"
    assert lines[1] == "not replayed (SQS refused the send), left in the DLQ: 5 message(s)"
    for delivery_id in refused:
        assert any(delivery_id in line and "InvalidMessageContents" in line for line in lines)
    arrived = [m["MessageAttributes"]["delivery_id"]["StringValue"] for m in delivered(bridge)]
    assert sorted(arrived) == sorted(set(ids) - set(refused))
    # The refused ones are still dead letters, visible for the next look.
    assert depth(bridge, DEAD) == (5, 0)
    code, out, _err = dlq("list", stand, json=True)
    assert sorted(row["delivery_id"] for row in json.loads(out)) == refused


@pytest.mark.parametrize("keeps_window", [True, False])
def test_a_delivery_dead_lettered_again_while_replaying_is_not_replayed_again(
    bridge: InProcessBridge, keeps_window: bool
) -> None:
    """The cause is not fixed: processing dead-letters each replayed message at once (a
    new message, the same delivery id; with the replay's retry_window_start as the bridge
    keeps it, or without, as a dead letter of a body that is no envelope). The replay
    must not go round in circles."""
    ids = dead_letter(bridge, 30)
    stand = Stand(bridge.sqs)
    queues = DeliveryQueues(bridge.sqs, bridge.queue_url(WORK), bridge.queue_url(DEAD))

    def fail_again(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            attributes = entry["MessageAttributes"]
            queues.dead_letter(
                entry["MessageBody"],
                source="signup",
                delivery_id=attributes["delivery_id"]["StringValue"],
                error="Partnero answered 422: invalid email",
                error_kind="permanent",
                receive_count=1,
                retry_window_start=(
                    attributes["retry_window_start"]["StringValue"] if keeps_window else None
                ),
            )

    stand.after_send.append(fail_again)
    code, out, _err = dlq("replay", stand)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "replayed 30 message(s): signup 30"
    assert lines[1] == (
        "dead-lettered again while replaying (the cause is not fixed), left in the DLQ: "
        "30 message(s)"
    )
    assert len(delivered(bridge)) == 30
    assert depth(bridge, DEAD) == (30, 0)
    code, out, _err = dlq("list", json=True)
    assert sorted(row["delivery_id"] for row in json.loads(out)) == ids
    assert {row["error_kind"] for row in json.loads(out)} == {"permanent"}


@pytest.mark.parametrize(("rate", "count"), [(20.0, 100), (2.0, 12)])
def test_replay_is_paced(bridge: InProcessBridge, rate: float, count: int) -> None:
    dead_letter(bridge, count)
    virtual = VirtualTime()
    stand = Stand(bridge.sqs, virtual)
    tools = Tools(polling=LONG_POLLING, clock=virtual.clock, sleep=virtual.sleep)
    code, out, _err = dlq("replay", stand, tools, rate=rate)
    assert (code, out.strip()) == (0, f"replayed {count} message(s): signup {count}")
    first = stand.sends[0][0]
    batch = max(1, min(10, int(rate)))
    sent = 0
    for at, messages in stand.sends:
        assert messages <= batch
        sent += messages
        # Never ahead of the rate by more than one batch (and the real time a call takes).
        assert sent <= rate * (at - first + 0.05) + batch
    # Paced from when replay started, a moment before its first send was recorded.
    assert stand.sends[-1][0] - first >= (count - batch) / rate - 0.05


# -- errors -----------------------------------------------------------------------------


def test_without_local_queues_one_line_says_what_to_do(bridge: InProcessBridge) -> None:
    for url in bridge.sqs.list_queues().get("QueueUrls", []):
        bridge.sqs.delete_queue(QueueUrl=url)
    code, out, err = dlq("list")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "the local stack's queues are not at" in err
    assert "unset AWS_ENDPOINT_URL to let the command find the running local stack" in err
    assert "make run" in err
    assert "export" not in err


def test_an_unknown_stack_is_one_line(bridge: InProcessBridge) -> None:
    args = Namespace(
        action="list",
        source=None,
        id=None,
        stack_name="no-such-stack",
        json=False,
        yes=False,
        rate=0,
        quiet=True,
    )
    err = io.StringIO()
    code = run(args, out=io.StringIO(), err=err)
    assert code == 1
    assert err.getvalue() == (
        "partnero-bridge dlq: stack no-such-stack not found: check --stack-name and AWS_REGION\n"
    )


def test_progress_bar_only_on_a_terminal(bridge: InProcessBridge) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    dead_letter(bridge, 15)
    tools = Tools(polling=Polling(wait_seconds=0, empty_polls=1))
    args = Namespace(
        action="list",
        source="signup",
        id=None,
        stack_name=None,
        json=True,
        yes=False,
        rate=0,
        quiet=False,
    )
    terminal = Terminal()
    assert run(args, out=io.StringIO(), err=terminal, tools=tools) == 0
    assert "list signup" in terminal.getvalue()
    assert "15/15" in terminal.getvalue()
    quiet = Terminal()
    args.quiet = True
    assert run(args, out=io.StringIO(), err=quiet, tools=tools) == 0
    assert quiet.getvalue() == ""


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command, with no AWS settings but ``env`` (no profile, no config)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    return subprocess.run(
        [str(Path(sys.executable).with_name("partnero-bridge")), "dlq", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_region_one_line_and_no_traceback(tmp_path: Path) -> None:
    answer = cli(tmp_path, "list", "--stack-name", "partnero-bridge-prod")
    assert answer.returncode == 1
    assert answer.stdout == ""
    assert answer.stderr.startswith("partnero-bridge dlq: no AWS region: set AWS_REGION")
    assert answer.stderr.count("\n") == 1


def test_aws_region_is_honoured_for_a_deployed_stack(tmp_path: Path) -> None:
    # boto3 reads only AWS_DEFAULT_REGION; AWS_REGION (the AWS CLI's and other SDKs')
    # counts too: what is missing next is the credentials.
    answer = cli(tmp_path, "list", "--stack-name", "partnero-bridge-prod", AWS_REGION="us-east-1")
    assert answer.returncode == 1
    assert answer.stderr.startswith("partnero-bridge dlq: no AWS credentials")
    assert answer.stderr.count("\n") == 1


def test_a_local_stack_not_running_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    answer = cli(
        tmp_path,
        "replay",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_MAX_ATTEMPTS="1",
    )
    assert answer.returncode == 1
    assert answer.stderr == (
        f"partnero-bridge dlq: cannot reach http://127.0.0.1:{port}/: "
        "is the local stack running (`make run`)?\n"
    )


def test_a_negative_rate_is_refused(tmp_path: Path) -> None:
    answer = cli(tmp_path, "replay", "--rate", "-1")
    assert answer.returncode == 2
    assert "must be a number >= 0" in answer.stderr
