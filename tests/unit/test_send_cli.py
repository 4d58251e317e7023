"""`partnero-bridge send`: Ecwid samples are stamped with the send time and signed so."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from partnero_bridge.ecwid.signature import SIGNATURE_HEADER, verify
from partnero_bridge_cli.local.stack import DEMO_ECWID_CLIENT_SECRET
from partnero_bridge_cli.send import find_sample, signed_request

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROTATING_CLIENT_SECRET = "send-test-new-client-secret"
OLD_CLIENT_SECRET = "send-test-old-client-secret"


@pytest.mark.parametrize("fresh", [False, True], ids=["same-event", "fresh-event"])
def test_ecwid_sample_is_stamped_with_the_send_time_and_signed(
    monkeypatch: pytest.MonkeyPatch, fresh: bool
) -> None:
    monkeypatch.delenv("ECWID_CLIENT_SECRET", raising=False)
    sample = find_sample(ROOT, "ecwid/order.created")
    assert sample.body["eventCreated"] < time.time() - 7 * 24 * 3600  # a sample from long ago

    before = int(time.time())
    raw, headers = signed_request(sample, fresh)
    body = json.loads(raw)

    assert before <= body["eventCreated"] <= int(time.time())
    assert (body["eventId"] == sample.body["eventId"]) is not fresh
    assert verify(
        headers[SIGNATURE_HEADER], DEMO_ECWID_CLIENT_SECRET, body["eventCreated"], body["eventId"]
    )
    assert sample.body["eventCreated"] != body["eventCreated"]  # the sample is left as it is


def test_first_of_several_client_secrets_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECWID_CLIENT_SECRET", f"{ROTATING_CLIENT_SECRET}, {OLD_CLIENT_SECRET}")
    raw, headers = signed_request(find_sample(ROOT, "ecwid/order.updated"), fresh=False)
    body = json.loads(raw)

    created, event_id = body["eventCreated"], body["eventId"]
    assert verify(headers[SIGNATURE_HEADER], ROTATING_CLIENT_SECRET, created, event_id)
    assert not verify(headers[SIGNATURE_HEADER], OLD_CLIENT_SECRET, created, event_id)
