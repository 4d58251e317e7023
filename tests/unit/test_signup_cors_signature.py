"""Which browser origins may sign up, and when a shop's backend signature is trusted."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from partnero_bridge.signup.cors import OriginPolicy
from partnero_bridge.signup.signature import TOLERANCE_SECONDS, sign, verify

pytestmark = pytest.mark.unit

SHOP = "https://shop.example"

# --- OriginPolicy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "origin", "expected"),
    [
        pytest.param([SHOP], SHOP, True, id="exact"),
        pytest.param([SHOP], SHOP + "/", True, id="request-trailing-slash"),
        pytest.param([SHOP + "/"], SHOP, True, id="configured-trailing-slash"),
        pytest.param([SHOP], "HTTPS://SHOP.EXAMPLE", True, id="request-upper-case"),
        pytest.param(["https://Shop.Example"], SHOP, True, id="configured-mixed-case"),
        pytest.param([SHOP, "https://other.example"], "https://other.example", True, id="second"),
        pytest.param([SHOP], "http://shop.example", False, id="other-scheme"),
        pytest.param([SHOP], "https://shop.example:8443", False, id="other-port"),
        pytest.param([SHOP], "https://www.shop.example", False, id="subdomain"),
        pytest.param([SHOP], "https://shop.example.evil.test", False, id="suffix-attack"),
        pytest.param([SHOP], "https://shop.exampl", False, id="prefix"),
        pytest.param([SHOP], "null", False, id="null-origin"),
        pytest.param([SHOP], "", False, id="empty-origin"),
        pytest.param(["*"], "https://anything.test", True, id="star-any"),
        pytest.param(["*"], "null", True, id="star-null"),
        pytest.param([SHOP, "*"], "https://anything.test", True, id="star-among-others"),
        pytest.param([], SHOP, False, id="empty-list-none"),
        pytest.param([], "*", False, id="empty-list-star-origin"),
    ],
)
def test_allows(allowed: list[str], origin: str, expected: bool) -> None:
    assert OriginPolicy(allowed).allows(origin) is expected


@pytest.mark.parametrize(
    ("allowed", "origin"),
    [
        ([SHOP], SHOP),
        ([SHOP], "HTTPS://SHOP.EXAMPLE/"),
        (["*"], "https://anything.test"),
    ],
)
def test_allowed_origin_gets_its_own_origin_back_and_vary(allowed: list[str], origin: str) -> None:
    headers = OriginPolicy(allowed).response_headers(origin)

    assert headers == {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@pytest.mark.parametrize(
    ("allowed", "origin"),
    [
        pytest.param([SHOP], "https://evil.test", id="refused"),
        pytest.param([SHOP], None, id="server-caller"),
        pytest.param([SHOP], "", id="empty-origin"),
        pytest.param([], SHOP, id="nothing-allowed"),
        pytest.param(["*"], None, id="star-server-caller"),
    ],
)
def test_no_cors_headers_for_refused_or_missing_origin(
    allowed: list[str], origin: str | None
) -> None:
    assert OriginPolicy(allowed).response_headers(origin) == {}


def test_preflight_for_an_allowed_origin() -> None:
    headers = OriginPolicy([SHOP]).preflight_headers(SHOP)

    assert headers["Access-Control-Allow-Origin"] == SHOP
    assert headers["Vary"] == "Origin"
    methods = [m.strip().upper() for m in headers["Access-Control-Allow-Methods"].split(",")]
    assert "POST" in methods
    assert "OPTIONS" in methods
    allowed_headers = [
        h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")
    ]
    assert "content-type" in allowed_headers
    assert "x-partnero-bridge-signature" in allowed_headers
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_preflight_for_a_refused_origin_does_not_allow_it() -> None:
    headers = OriginPolicy([SHOP]).preflight_headers("https://evil.test")

    assert "Access-Control-Allow-Origin" not in headers


# --- signature ---------------------------------------------------------------------------

SECRET = "whsec_signup_test"
BODY = b'{"email":"jane@example.com","partner_key":"acme"}'
T = 1_700_000_000


def _v1(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_produces_the_documented_header() -> None:
    assert sign(SECRET, BODY, T) == f"t={T},v1={_v1(SECRET, BODY, T)}"


GOOD = f"t={T},v1={_v1(SECRET, BODY, T)}"
OTHER = _v1("another-secret", BODY, T)


@pytest.mark.parametrize(
    ("header", "body", "secret", "now", "expected"),
    [
        pytest.param(GOOD, BODY, SECRET, T, True, id="valid"),
        pytest.param(sign(SECRET, BODY, T), BODY, SECRET, T + 10, True, id="valid-from-sign"),
        pytest.param(f"t={T}, v1={_v1(SECRET, BODY, T)}", BODY, SECRET, T, True, id="spaces"),
        pytest.param(f"v1={_v1(SECRET, BODY, T)},t={T}", BODY, SECRET, T, True, id="any-order"),
        pytest.param(GOOD, BODY, "wrong-secret", T, False, id="wrong-secret"),
        pytest.param(GOOD, BODY + b" ", SECRET, T, False, id="tampered-body-extra-byte"),
        pytest.param(GOOD, BODY.replace(b"acme", b"evil"), SECRET, T, False, id="tampered-partner"),
        pytest.param(GOOD, b"", SECRET, T, False, id="empty-body"),
        pytest.param(GOOD, BODY, SECRET, T + TOLERANCE_SECONDS, True, id="just-in-time"),
        pytest.param(GOOD, BODY, SECRET, T + TOLERANCE_SECONDS + 1, False, id="stale"),
        pytest.param(GOOD, BODY, SECRET, T + 86_400, False, id="a-day-old"),
        pytest.param(GOOD, BODY, SECRET, T - TOLERANCE_SECONDS, True, id="future-within"),
        pytest.param(GOOD, BODY, SECRET, T - TOLERANCE_SECONDS - 1, False, id="future-beyond"),
        pytest.param(
            f"t={T},v1={OTHER},v1={_v1(SECRET, BODY, T)}",
            BODY,
            SECRET,
            T,
            True,
            id="second-v1-matches",
        ),
        pytest.param(
            f"t={T},v1={_v1(SECRET, BODY, T)},v1={OTHER}",
            BODY,
            SECRET,
            T,
            True,
            id="first-v1-matches",
        ),
        pytest.param(f"t={T},v1={OTHER},v1=00", BODY, SECRET, T, False, id="no-v1-matches"),
        pytest.param(f"v1={_v1(SECRET, BODY, T)}", BODY, SECRET, T, False, id="missing-t"),
        pytest.param(f"t=,v1={_v1(SECRET, BODY, T)}", BODY, SECRET, T, False, id="empty-t"),
        pytest.param(f"t=abc,v1={_v1(SECRET, BODY, T)}", BODY, SECRET, T, False, id="t-text"),
        pytest.param(f"t=-{T},v1={_v1(SECRET, BODY, T)}", BODY, SECRET, -T, False, id="t-negative"),
        pytest.param(f"t={T},v0={_v1(SECRET, BODY, T)}", BODY, SECRET, T, False, id="v0-only"),
        pytest.param(f"t={T}", BODY, SECRET, T, False, id="t-only"),
        pytest.param(f"t={T},v1=", BODY, SECRET, T, False, id="empty-v1"),
        pytest.param("", BODY, SECRET, T, False, id="empty-header"),
        pytest.param("garbage", BODY, SECRET, T, False, id="garbage"),
        pytest.param(_v1(SECRET, BODY, T), BODY, SECRET, T, False, id="bare-digest"),
        pytest.param(
            f"t={T},v1={_v1(SECRET, BODY, T).upper()}", BODY, SECRET, T, False, id="upper-hex"
        ),
        pytest.param(
            f"t={T},v1={_v1(SECRET, BODY, T + 1)}", BODY, SECRET, T, False, id="other-timestamp"
        ),
        pytest.param(
            f"t={T + 1},v1={_v1(SECRET, BODY, T)}", BODY, SECRET, T, False, id="t-changed"
        ),
    ],
)
def test_verify(header: str, body: bytes, secret: str, now: float, expected: bool) -> None:
    assert verify(header, body, secret, now=now) is expected


@pytest.mark.parametrize("header", [GOOD, sign("", BODY, T), f"t={T},v1={_v1('', BODY, T)}"])
def test_empty_secret_never_verifies(header: str) -> None:
    # A missing secret must not turn every caller (or an empty-key HMAC) into a trusted one.
    assert verify(header, BODY, "", now=T) is False


def test_custom_tolerance() -> None:
    assert verify(GOOD, BODY, SECRET, now=T + 60, tolerance=30) is False
    assert verify(GOOD, BODY, SECRET, now=T + 20, tolerance=30) is True


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("t=" + "9" * 400 + f",v1={_v1(SECRET, BODY, T)}", id="400-digit-t"),
        pytest.param(f"t={T}," + ",".join([f"v1={OTHER}"] * 5000), id="5000-v1"),
        pytest.param(f"t={T},v1=\ud800", id="lone-surrogate"),
        pytest.param(f"t={T}\x00,v1={_v1(SECRET, BODY, T)}", id="nul"),
        pytest.param(f"t={T},v1={_v1(SECRET, BODY, T)}\u200b", id="zero-width-space"),
        pytest.param("\U0001f600" * 1000, id="emoji"),
    ],
)
def test_headers_of_any_shape_are_refused_without_raising(header: str) -> None:
    assert verify(header, BODY, SECRET, now=T) is False
