"""``Stripe-Signature`` verification, cross-checked against the official ``stripe`` package.

stripe-python (``stripe.Webhook.construct_event``) is the reference implementation. Every case
of the table is put to both verifiers: ours with a fixed clock (``now=NOW``), stripe-python with
timestamps built relative to ``time.time()`` (it has no clock parameter) and one secret at a
time (it takes a single secret; ours takes several). Where the two are meant to disagree the
case says why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from partnero_bridge.stripe.signature import TOLERANCE_SECONDS, sign, verify
from tests.support.stripe import EVENTS

pytestmark = pytest.mark.unit

SECRET = "whsec_test_bridge_current_0123456789abcdef"
OLD_SECRET = "whsec_test_bridge_previous_fedcba9876543210"
NOW = 1_750_000_000  # our verifier's fixed clock
# A real-shaped body with a non-ASCII character (U+00D7 in the line description): the bytes
# signed must be the bytes received, whatever the encoding.
RAW = (EVENTS / "invoice.paid.subscription_cycle.json").read_bytes()
assert "\u00d7" in RAW.decode()
RESERIALIZED = json.dumps(json.loads(RAW)).encode()  # what a handler that parsed first has
TAMPERED = RAW.replace(b'"amount_paid": 2400', b'"amount_paid": 240000', 1)
assert TAMPERED != RAW
assert RESERIALIZED != RAW


def v1(secret: str, timestamp: int, body: bytes = RAW) -> str:
    """The hex ``v1`` signature, computed by hand as the Stripe docs describe it."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def stripe_header(timestamp: int, secret: str = SECRET, body: bytes = RAW) -> str:
    """The header as stripe-python's own test helper writes it."""
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return header


def stripe_accepts(payload: bytes, header: str | None, secret: str) -> bool:
    try:
        stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        return False
    return True


def real_timestamp(age: int) -> int:
    """A timestamp ``age`` seconds before stripe-python's clock (negative: in the future).

    stripe-python refuses ``t < time.time() - tolerance`` with a float clock and an integer
    ``t``. Rounding the clock up makes the age it sees fall in ``(age - 1, age]``, so that
    "exactly 300 s old" is not refused for the fraction of a second; the loop keeps the next
    whole second out of reach of the check that follows.
    """
    now = time.time()
    while not 0 < now % 1 < 0.9:
        time.sleep(0.05)
        now = time.time()
    return math.ceil(now) - age


@dataclass(frozen=True)
class Case:
    header: Callable[[int], str | None]  # the header sent, given its timestamp
    secrets: tuple[str, ...] = (SECRET,)  # configured on the endpoint
    body: bytes = RAW  # the bytes that reach the verifier
    age: int = 0  # seconds between ``t`` and the receiver's clock; negative: ahead
    ours: bool = True  # verify(..., secrets)
    stripe: tuple[bool, ...] = (True,)  # construct_event with each secret in turn
    divergence: str = ""  # why stripe-python decides differently, if it does


CASES = [
    pytest.param(Case(stripe_header), id="valid"),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(SECRET, t)}"),
        id="valid-hand-computed",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(OLD_SECRET, t)},v1={v1(SECRET, t)}"),
        id="two-v1-second-matches",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(SECRET, t)},v1={v1(OLD_SECRET, t)}"),
        id="two-v1-first-matches",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(SECRET, t)},v0={'0' * 64}"),
        id="v1-and-v0",
    ),
    pytest.param(
        Case(lambda t: stripe_header(t, OLD_SECRET), ours=False, stripe=(False,)),
        id="wrong-secret",
    ),
    pytest.param(
        Case(stripe_header, body=TAMPERED, ours=False, stripe=(False,)),
        id="tampered-body",
    ),
    pytest.param(
        Case(stripe_header, body=RESERIALIZED, ours=False, stripe=(False,)),
        id="reserialized-json-body",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(SECRET, t - 1)}", ours=False, stripe=(False,)),
        id="signature-of-another-timestamp",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v1={v1(SECRET, t).upper()}", ours=False, stripe=(False,)),
        id="upper-case-hex",
    ),
    pytest.param(
        Case(stripe_header, age=TOLERANCE_SECONDS + 1, ours=False, stripe=(False,)),
        id="stale-301s",
    ),
    pytest.param(Case(stripe_header, age=TOLERANCE_SECONDS), id="exactly-300s-old"),
    pytest.param(
        # stripe-python only checks that t is not too OLD; our verifier also refuses a
        # timestamp more than the tolerance ahead of its clock (a header signed for later
        # use). Both behaviours are asserted.
        Case(
            stripe_header,
            age=-(TOLERANCE_SECONDS + 1),
            ours=False,
            stripe=(True,),
            divergence="stripe-python accepts timestamps in the future",
        ),
        id="future-301s",
    ),
    pytest.param(
        Case(lambda t: f"t={t},v0={v1(SECRET, t)}", ours=False, stripe=(False,)),
        id="v0-only",
    ),
    pytest.param(
        Case(lambda t: f"v1={v1(SECRET, t)}", ours=False, stripe=(False,)),
        id="missing-t",
    ),
    pytest.param(
        Case(lambda t: f"t=,v1={v1(SECRET, t)}", ours=False, stripe=(False,)),
        id="empty-t",
    ),
    pytest.param(Case(lambda t: f"t={t}", ours=False, stripe=(False,)), id="no-signature"),
    pytest.param(Case(lambda t: "", ours=False, stripe=(False,)), id="empty-header"),
    pytest.param(Case(lambda t: None, ours=False, stripe=(False,)), id="no-header"),
    pytest.param(
        # Stripe never sends spaces. Our parser strips each item; stripe-python splits on ","
        # only, reads " v1" as another scheme and finds no v1 signature. Accepting it weakens
        # nothing (the HMAC is still checked), so this is a tolerated divergence.
        Case(
            lambda t: f"t={t}, v1={v1(SECRET, t)}",
            stripe=(False,),
            divergence="stripe-python does not strip spaces around header items",
        ),
        id="header-with-spaces",
    ),
    pytest.param(
        Case(stripe_header, secrets=(OLD_SECRET, SECRET), stripe=(False, True)),
        id="several-secrets-second-matches",
    ),
    pytest.param(
        Case(stripe_header, secrets=(SECRET, OLD_SECRET), stripe=(True, False)),
        id="several-secrets-first-matches",
    ),
    pytest.param(
        Case(
            lambda t: stripe_header(t, "whsec_someone_else"),
            secrets=(OLD_SECRET, SECRET),
            ours=False,
            stripe=(False, False),
        ),
        id="several-secrets-none-matches",
    ),
    pytest.param(
        Case(lambda t: stripe_header(t, ""), secrets=("",), ours=False, stripe=(False,)),
        id="empty-secret",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_verify_cross_checked_with_stripe_python(case: Case) -> None:
    header_for_us = case.header(NOW - case.age)
    ours = verify(header_for_us, case.body, case.secrets, now=NOW)
    ours_per_secret = tuple(
        verify(header_for_us, case.body, [secret], now=NOW) for secret in case.secrets
    )
    theirs = tuple(
        stripe_accepts(case.body, case.header(real_timestamp(case.age)), secret)
        for secret in case.secrets
    )

    assert ours is case.ours
    assert theirs == case.stripe
    # Several secrets: accepted when, and only when, one of them alone is accepted.
    assert ours is any(ours_per_secret)
    if case.divergence:
        assert ours_per_secret != theirs, case.divergence
    else:
        assert ours_per_secret == theirs


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (0, True),
        (TOLERANCE_SECONDS, True),  # 300 s old
        (TOLERANCE_SECONDS + 1, False),  # 301 s old
        (-TOLERANCE_SECONDS, True),  # 300 s ahead
        (-(TOLERANCE_SECONDS + 1), False),  # 301 s ahead
    ],
    ids=["now", "300s-old", "301s-old", "300s-ahead", "301s-ahead"],
)
def test_tolerance_boundaries_on_a_fixed_clock(offset: int, accepted: bool) -> None:
    header = stripe_header(NOW - offset)
    assert verify(header, RAW, [SECRET], now=NOW) is accepted
    # Half a second later, the 300 s old header is 300.5 s old (refused); 300 s ahead is
    # then 299.5 s ahead (still accepted).
    assert verify(header, RAW, [SECRET], now=NOW + 0.5) is (accepted and offset != 300)


@pytest.mark.parametrize("tolerance", [10, 600])
def test_tolerance_is_configurable(tolerance: int) -> None:
    header = stripe_header(NOW - tolerance)
    assert verify(header, RAW, [SECRET], now=NOW, tolerance=tolerance) is True
    assert verify(header, RAW, [SECRET], now=NOW + 1, tolerance=tolerance) is False


def test_verify_without_now_uses_the_real_clock() -> None:
    assert verify(stripe_header(int(time.time())), RAW, [SECRET]) is True
    assert verify(stripe_header(NOW), RAW, [SECRET]) is False  # long ago


# --- sign(): what the CLI and the tests send must be what Stripe would send ----------------


def test_sign_writes_the_same_header_as_stripe_python() -> None:
    assert sign(SECRET, RAW, NOW) == stripe_header(NOW)
    assert sign(SECRET, RAW, NOW) == f"t={NOW},v1={v1(SECRET, NOW)}"


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.stem)
def test_sign_output_is_accepted_by_stripe_python(path: Path) -> None:
    raw = path.read_bytes()
    header = sign(SECRET, raw)  # current time
    event = stripe.Webhook.construct_event(raw, header, SECRET, tolerance=TOLERANCE_SECONDS)
    assert event.id == json.loads(raw)["id"]
    assert verify(header, raw, [OLD_SECRET, SECRET]) is True
    assert stripe_accepts(raw, header, OLD_SECRET) is False


def test_sign_output_for_another_timestamp_is_refused_by_both() -> None:
    header = sign(SECRET, RAW, real_timestamp(TOLERANCE_SECONDS + 60))
    assert stripe_accepts(RAW, header, SECRET) is False
    assert verify(sign(SECRET, RAW, NOW - 360), RAW, [SECRET], now=NOW) is False


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("9" * 400, id="400-digits"),
        pytest.param("1" * 13, id="13-digits"),
        pytest.param("\u0661\u0667\u0669\u0665", id="arabic-indic-digits"),
        pytest.param("-1", id="negative"),
        pytest.param("", id="empty"),
    ],
)
def test_a_timestamp_that_is_not_one_never_verifies_and_never_raises(timestamp: str) -> None:
    payload = b'{"id": "evt_1"}'
    digest = hmac.new(b"whsec_x", f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    assert verify(f"t={timestamp},v1={digest}", payload, ["whsec_x"]) is False


# --- headers of any shape: never an exception, never a match by accident -------------------

GOOD_V1 = v1(SECRET, NOW)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"t=0,v1={GOOD_V1}", id="epoch"),
        pytest.param(f"t={10**12 - 1},v1={GOOD_V1}", id="year-33658"),
        pytest.param(f"t={NOW}.5,v1={GOOD_V1}", id="fractional"),
        pytest.param(f"t=+{NOW},v1={GOOD_V1}", id="plus-sign"),
        pytest.param(f"t={NOW:_},v1={GOOD_V1}", id="underscores"),
        pytest.param(f"t={NOW},v1={GOOD_V1 * 10_000}", id="one-huge-v1"),
        pytest.param(f"t={NOW}," + ",".join([f"v1={GOOD_V1}"] * 200), id="valid-v1-among-too-many"),
        pytest.param(f"t={NOW},v1={GOOD_V1}\x00", id="nul"),
        pytest.param(f"t={NOW}\x00,v1={GOOD_V1}", id="nul-in-t"),
        pytest.param(f"t={NOW},v1=\ud800{GOOD_V1[1:]}", id="lone-surrogate"),
        pytest.param(f"t={NOW},v1={GOOD_V1[:-1]}\u0966", id="devanagari-zero"),
        pytest.param(f"t={NOW},v1={'é' * 64}", id="non-ascii"),
        pytest.param("\x7f" * 5000, id="control-chars"),
        pytest.param("," * 10_000, id="only-commas"),
        pytest.param("=" * 10_000, id="only-equals"),
    ],
)
def test_near_valid_and_absurd_headers_are_refused_without_raising(header: str) -> None:
    assert verify(header, RAW, [SECRET], now=NOW) is False


def test_a_valid_v1_among_a_plausible_number_of_others_verifies() -> None:
    others = ",".join(f"v1={v1(f'whsec_other_{i}', NOW)}" for i in range(50))
    assert verify(f"t={NOW},{others},v1={GOOD_V1}", RAW, [SECRET], now=NOW) is True


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    header=st.text(max_size=300)
    | st.text(alphabet="tv01=,abcdef9 \x00\ud800é", max_size=300)
    | st.builds(
        lambda t, sigs: f"t={t}," + ",".join(f"v1={s}" for s in sigs),
        st.integers() | st.text(max_size=20),
        st.lists(st.text(max_size=80), max_size=20),
    )
)
def test_any_header_text_is_a_bool_never_an_exception(header: str) -> None:
    assert verify(header, RAW, [SECRET], now=NOW) is False
