"""How long a failed delivery stays hidden before its next attempt."""

from __future__ import annotations

import pytest

from partnero_bridge.processing import retry_delay
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS

pytestmark = pytest.mark.unit

# A 30 s base (the default) and a 15 min cap.
BASE = 30
CAP = 900


@pytest.mark.parametrize(
    ("receive_count", "expected"),
    [
        (0, 30),
        (1, 30),
        (2, 60),
        (3, 120),
        (4, 240),
        (5, 480),
        (6, 900),
        (7, 900),
        (50, 900),
        (10_000, 900),
    ],
)
def test_delay_doubles_with_each_receive_up_to_the_cap(receive_count: int, expected: int) -> None:
    assert retry_delay(receive_count, BASE, CAP) == expected


def test_delay_never_shrinks_as_receives_grow() -> None:
    delays = [retry_delay(n, BASE, CAP) for n in range(1, 40)]

    assert delays == sorted(delays)
    assert max(delays) == CAP


@pytest.mark.parametrize(
    ("receive_count", "retry_after", "expected"),
    [
        pytest.param(1, 120.0, 120, id="longer-retry-after-wins"),
        pytest.param(1, 10.0, 30, id="shorter-retry-after-loses"),
        pytest.param(3, 120.0, 120, id="equal"),
        pytest.param(1, 0.0, 30, id="zero"),
        pytest.param(1, 30.2, 31, id="fraction-rounds-up"),
        pytest.param(1, 45.5, 46, id="half-rounds-up"),
        pytest.param(6, 1800.0, 1800, id="retry-after-above-the-cap"),
        pytest.param(1, None, 30, id="absent"),
    ],
)
def test_retry_after_wins_when_longer(
    receive_count: int, retry_after: float | None, expected: int
) -> None:
    assert retry_delay(receive_count, BASE, CAP, retry_after) == expected


@pytest.mark.parametrize(
    ("base", "cap", "retry_after"),
    [
        pytest.param(30, 43200, None, id="cap-at-limit"),
        pytest.param(30, 100_000, None, id="cap-above-limit"),
        pytest.param(43200, 43200, None, id="base-at-limit"),
        pytest.param(30, 900, 86_400.0, id="retry-after-a-day"),
        pytest.param(30, 900, 1e12, id="retry-after-huge"),
    ],
)
@pytest.mark.parametrize("receive_count", [1, 5, 30, 1000])
def test_delay_never_exceeds_the_sqs_visibility_limit(
    receive_count: int, base: int, cap: int, retry_after: float | None
) -> None:
    delay = retry_delay(receive_count, base, cap, retry_after)

    assert 0 <= delay <= 43200
    assert MAX_VISIBILITY_SECONDS == 43200


def test_delay_reaches_the_limit_for_a_long_retry_after() -> None:
    assert retry_delay(1, BASE, CAP, 86_400.0) == 43200


@pytest.mark.parametrize("receive_count", [0, 1, 2, 10, 1000])
def test_base_zero_means_retry_at_once(receive_count: int) -> None:
    assert retry_delay(receive_count, 0, CAP) == 0


def test_base_zero_still_honours_retry_after() -> None:
    assert retry_delay(3, 0, CAP, 12.0) == 12


def test_cap_zero_means_retry_at_once_unless_partnero_asks_to_wait() -> None:
    assert retry_delay(4, BASE, 0) == 0
    assert retry_delay(4, BASE, 0, 5.0) == 5


def test_result_is_an_integer() -> None:
    assert isinstance(retry_delay(2, BASE, CAP, 70.5), int)


def test_infinite_retry_after_is_capped() -> None:
    assert retry_delay(1, BASE, CAP, float("inf")) == 43200
