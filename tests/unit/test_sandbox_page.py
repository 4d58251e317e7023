"""The sandbox page's own texts: what happened to a delivery (the outcome said once, by its
tag), amounts with their currency's decimals and times in UTC, run in node like a browser
would run the page's script."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("node") is None, reason="node runs the page's script"),
]

PAGE = (
    Path(__file__).resolve().parents[2]
    / "cli"
    / "partnero_bridge_cli"
    / "local"
    / "pages"
    / "sandbox.html"
)

# The page's script in a context with no network and no timers: only its functions are called.
_HARNESS = """
const vm = require("vm");
const [script, calls] = [process.argv[1], JSON.parse(process.argv[2])];
const context = {
  fetch: () => new Promise(() => {}), setInterval: () => 0, document: {}, Intl, Date, Number,
  String, isNaN,
};
vm.runInNewContext(script, context);
console.log(JSON.stringify(calls.map(([name, args]) => context[name](...args))));
"""


def call(*calls: tuple[str, list[Any]]) -> list[Any]:
    found = re.search(r"<script>(.*)</script>", PAGE.read_text(), re.DOTALL)
    assert found is not None
    out = subprocess.run(
        [shutil.which("node") or "node", "-e", _HARNESS, found.group(1), json.dumps(calls)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result: list[Any] = json.loads(out)
    return result


def delivery(outcome: str, detail: str, reason: str = "") -> dict[str, Any]:
    return {"outcome": outcome, "detail": detail, "reason": reason}


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        pytest.param(delivery("created", "created", "created"), "", id="sign-up-said-once"),
        pytest.param(
            delivery("already_recorded", "already recorded", "exists"),
            "reason: exists",
            id="repeat-in-words",
        ),
        pytest.param(
            delivery("created", "created 20.00 USD: paid", "paid"),
            "created 20.00 USD: paid",
            id="commission-created",
        ),
        pytest.param(
            delivery("reversed", "reversed 14.99 USD: 1999 of 1999 refunded", "refunded"),
            "reversed 14.99 USD: 1999 of 1999 refunded",
            id="commission-reversed",
        ),
        pytest.param(
            delivery("ignored", "payment is not_paid; Partnero holds nothing", "not_paid"),
            "reason: not_paid: payment is not_paid; Partnero holds nothing",
            id="ignored-with-reason",
        ),
    ],
)
def test_what_happened_says_the_outcome_once(entry: dict[str, Any], shown: str) -> None:
    assert call(("whatHappened", [entry])) == [shown]


def test_amounts_have_their_currencys_decimals_and_times_are_utc() -> None:
    assert call(
        ("money", [20, "USD"]),
        ("money", ["21.2", "USD"]),
        ("money", [1500, "JPY"]),
        ("money", ["1.2", "KWD"]),
        ("when", [1764435792]),
        ("when", ["2026-11-29T17:03:12.000Z"]),
    ) == ["20.00", "21.20", "1500", "1.200", "2025-11-29 17:03:12 UTC", "2026-11-29 17:03:12 UTC"]
