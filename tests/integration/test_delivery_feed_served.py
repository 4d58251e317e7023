"""The delivery feed over HTTP: on the local gateway (for `send`) and on the sandbox page's
admin path (for the page), answered by the stack, never by a function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.deliveries import FEED_PATH, DeliveryFeed
from partnero_bridge_cli.local.functions import Invocation
from partnero_bridge_cli.local.gateway import Gateway
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.template import HttpRoute

pytestmark = pytest.mark.integration

ACCEPTED = json.dumps(
    {"message": "Stripe event accepted", "delivery_id": "stripe-evt_1", "event_type": "x.y"}
)


@pytest.fixture
def feed() -> DeliveryFeed:
    fed = DeliveryFeed()
    fed.observe(ACCEPTED)
    return fed


@pytest.fixture
def gateway(feed: DeliveryFeed) -> Iterator[tuple[Gateway, list[str]]]:
    invoked: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> Invocation:
        invoked.append(function)
        return Invocation({"statusCode": 200, "body": "{}"})

    routes = [HttpRoute("ANY", "/{proxy+}", "CatchAll")]
    served = Gateway(0, routes, invoke, {FEED_PATH: feed.answer})
    served.start()
    try:
        yield served, invoked
    finally:
        served.stop()


def test_the_gateway_answers_the_feed_itself(gateway: tuple[Gateway, list[str]]) -> None:
    served, invoked = gateway
    answer = httpx.get(f"{served.url}{FEED_PATH}", params={"delivery_id": "stripe-evt_1"})

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    [entry] = answer.json()["deliveries"]
    assert (entry["delivery_id"], entry["outcome"]) == ("stripe-evt_1", "queued")
    assert httpx.get(f"{served.url}{FEED_PATH}?since=soon").status_code == 400
    assert invoked == []
    # Only GET is the feed's; anything else goes to the routes as before.
    assert httpx.post(f"{served.url}{FEED_PATH}").status_code == 200
    assert invoked == ["CatchAll"]


def test_the_sandbox_page_reads_the_stacks_feed(feed: DeliveryFeed) -> None:
    with PartneroSandbox() as sandbox:
        alone = httpx.get(f"{sandbox.root_url}/_sandbox/deliveries").json()
        sandbox.show_deliveries(feed.snapshot)
        shown = httpx.get(f"{sandbox.root_url}/_sandbox/deliveries").json()
        page = httpx.get(f"{sandbox.root_url}/").text

    assert alone == {"available": False}
    assert shown["available"] is True
    assert [d["delivery_id"] for d in shown["deliveries"]] == ["stripe-evt_1"]
    assert 'id="deliveries"' in page
    assert "/_sandbox/deliveries" in page
