"""The Ecwid storefront snippet puts the partner cookie into the hidden order field."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SNIPPET = Path(__file__).resolve().parents[2] / "events" / "ecwid" / "storefront-snippet.html"
NODE = shutil.which("node")

# A minimal browser: a cookie string, a window, and Ecwid's API hooks being recorded.
_HARNESS = """
const vm = require("vm");
const [script, cookie] = [process.argv[1], process.argv[2]];
const refreshed = [];
const window = {Ecwid: {refreshConfig: () => refreshed.push(1), OnAPILoaded: {add: () => {}}}};
window.window = window;
vm.runInNewContext(script, {window, document: {cookie}, decodeURIComponent, RegExp});
const fields = window.ec && window.ec.order && window.ec.order.extraFields;
console.log(JSON.stringify({fields: fields || null, refreshed: refreshed.length}));
"""


def run(cookie: str) -> dict[str, object]:
    html = SNIPPET.read_text()
    script = re.search(r"<script>(.*)</script>", html, re.DOTALL)
    assert script is not None
    out = subprocess.run(
        [NODE or "node", "-e", _HARNESS, script.group(1), cookie],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


@pytest.mark.skipif(NODE is None, reason="node is needed to run the browser snippet")
@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("partnero_partner=demo-partner", "demo-partner"),
        ("theme=dark; partnero_partner=acme%20co; other=1", "acme co"),
        ("xpartnero_partner=nope", None),
        ("", None),
        (f"partnero_partner={'k' * 256}", None),
    ],
)
def test_cookie_becomes_hidden_order_field(cookie: str, expected: str | None) -> None:
    result = run(cookie)
    if expected is None:
        assert result["fields"] is None
        assert result["refreshed"] == 0
    else:
        assert result["fields"] == {
            "partnero_partner": {"value": expected, "orderDetailsDisplaySection": "hidden"}
        }
        assert result["refreshed"] == 1
