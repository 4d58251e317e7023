"""Who a Stripe payment belongs to (``partnero_bridge.stripe.attribution``): tables."""

from __future__ import annotations

from typing import Any

import pytest

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.stripe.attribution import attribution_from

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("metadata", "client_reference_id", "customer_key", "partner_key"),
    [
        pytest.param(
            [{"partnero_customer_key": "pck", "customer_key": "ck"}],
            "cri",
            "pck",
            None,
            id="partnero_customer_key-first",
        ),
        pytest.param([{"customer_key": "ck"}], "cri", "ck", None, id="customer_key-second"),
        pytest.param([{}], "cri", "cri", None, id="client_reference_id-last"),
        pytest.param(
            [{"partnero_customer_key": "  ", "customer_key": "ck"}],
            None,
            "ck",
            None,
            id="blank-skipped",
        ),
        pytest.param([{"partnero_customer_key": " pck "}], None, "pck", None, id="stripped"),
        pytest.param([{}], "   ", None, None, id="blank-client-reference-id"),
        pytest.param([], None, None, None, id="nothing"),
        pytest.param(
            [{"customer_key": "obj"}, {"partnero_customer_key": "sub"}],
            None,
            "obj",
            None,
            id="object-before-subscription",
        ),
        pytest.param(
            [{}, {"partnero_customer_key": "sub"}], None, "sub", None, id="subscription-fallback"
        ),
        pytest.param(
            [{}, {"customer_key": "sub"}],
            "cri",
            "sub",
            None,
            id="subscription-metadata-before-client-reference-id",
        ),
        pytest.param(
            [{"partnero_partner": "pp", "partner_key": "pk"}],
            None,
            None,
            "pp",
            id="partnero_partner-first",
        ),
        pytest.param([{"partner_key": "pk"}], None, None, "pk", id="partner_key-second"),
        pytest.param(
            [{"partner_key": "obj"}, {"partnero_partner": "sub"}],
            None,
            None,
            "obj",
            id="partner-object-before-subscription",
        ),
        pytest.param(
            [{"partnero_partner": ""}, {"partnero_partner": "sub"}],
            None,
            None,
            "sub",
            id="partner-blank-skipped",
        ),
        pytest.param(
            [None, {"customer_key": "ck", "partner_key": "pk"}],
            None,
            "ck",
            "pk",
            id="non-mapping-ignored",
        ),
    ],
)
def test_attribution_precedence(
    metadata: list[Any],
    client_reference_id: str | None,
    customer_key: str | None,
    partner_key: str | None,
) -> None:
    found = attribution_from(metadata, client_reference_id=client_reference_id)
    assert (found.customer_key, found.partner_key) == (customer_key, partner_key)
    assert found.opted_out is False


@pytest.mark.parametrize(
    ("value", "opted_out"),
    [
        ("false", True),
        ("False", True),
        ("FALSE", True),
        (" false ", True),
        ("true", False),
        ("0", False),
        ("no", False),
        ("", False),
    ],
)
@pytest.mark.parametrize("place", [0, 1, 2], ids=["object", "subscription", "customer"])
def test_opt_out_anywhere(value: str, opted_out: bool, place: int) -> None:
    metadata: list[dict[str, Any]] = [{}, {}, {}]
    metadata[place]["partnero"] = value
    metadata[0]["partnero_partner"] = "acme"
    found = attribution_from(metadata)
    assert found.opted_out is opted_out
    assert found.partner_key == "acme"  # opting out hides nothing else


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada@Example.COM", "ada@example.com"),
        ("  ADA@EXAMPLE.COM\n", "ada@example.com"),
        ("CUST-42", "CUST-42"),
        (" Cust_42 ", "Cust_42"),
        ("Ünïcode-Key", "Ünïcode-Key"),
    ],
)
def test_normalize_customer_key(key: str, normalized: str) -> None:
    assert normalize_customer_key(key) == normalized
    assert attribution_from([{"partnero_customer_key": key}]).customer_key == normalized
    assert attribution_from([], client_reference_id=key).customer_key == normalized
