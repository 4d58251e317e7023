"""The rate-limit counters against DynamoDB (moto): atomic counts per window, hashed keys,
a TTL on every item, and every kind of store failure reported as RateLimitUnavailable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from partnero_bridge.ratelimit import CounterStore, RateLimitUnavailable, window_of

pytestmark = pytest.mark.integration

TABLE = "rate-limits"
NOW = 1_800_000_030.5  # 30.5 s into a minute


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def items(client: Any) -> list[dict[str, Any]]:
    return list(client.scan(TableName=TABLE)["Items"])


def test_counts_each_call_in_its_window(dynamodb: Any) -> None:
    store = CounterStore(dynamodb, TABLE)

    counts = [store.hit("signup-ip", "198.51.100.7", 60, NOW + i).hits for i in range(3)]
    next_minute = store.hit("signup-ip", "198.51.100.7", 60, NOW + 30)
    other = store.hit("signup-ip", "198.51.100.8", 60, NOW)

    assert counts == [1, 2, 3]
    assert next_minute.hits == 1
    assert next_minute.window == window_of(NOW + 30, 60)
    assert other.hits == 1


def test_the_table_holds_no_ip_or_partner_key_and_every_item_expires(dynamodb: Any) -> None:
    store = CounterStore(dynamodb, TABLE)
    store.hit("signup-ip", "198.51.100.7", 60, NOW)
    store.hit("signup-partner", "acme-partner", 3600, NOW)

    stored = items(dynamodb)

    assert len(stored) == 2
    text = repr(stored)
    assert "198.51.100.7" not in text
    assert "acme-partner" not in text
    for item in stored:
        window = 60 if item["pk"]["S"].startswith("signup-ip#") else 3600
        # Expires after its window ends, so it never disappears while it still counts.
        assert int(item["expires_at"]["N"]) > window_of(NOW, window).end


def test_a_missing_table_is_unavailable(dynamodb: Any) -> None:
    with pytest.raises(RateLimitUnavailable, match="ResourceNotFound"):
        CounterStore(dynamodb, "no-such-table").hit("signup-ip", "a", 60, NOW)


def test_no_table_configured_is_unavailable(dynamodb: Any) -> None:
    with pytest.raises(RateLimitUnavailable, match="no rate-limit table"):
        CounterStore(dynamodb, "").hit("signup-ip", "a", 60, NOW)


def test_an_unreachable_store_is_unavailable_quickly() -> None:
    # A port nothing listens on: the connection is refused (a BotoCoreError).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )

    with pytest.raises(RateLimitUnavailable, match="EndpointConnectionError"):
        CounterStore(client, TABLE).hit("signup-ip", "a", 60, NOW)


def test_a_store_that_does_not_answer_in_time_is_unavailable() -> None:
    # Accepts the connection, never answers: the read times out.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(connect_timeout=1, read_timeout=0.5, retries={"max_attempts": 1}),
        )

        with pytest.raises(RateLimitUnavailable, match="ReadTimeoutError"):
            CounterStore(client, TABLE).hit("signup-ip", "a", 60, NOW)
