"""The suite's own guard against leaks must itself catch leaks."""

from __future__ import annotations

import pytest

from tests.support.leaks import log_leaks

pytestmark = pytest.mark.unit

LINE = '{"level":"INFO","message":"sign-up accepted","customer_key":"%s"}'


def test_a_secret_anywhere_is_found() -> None:
    assert log_leaks("Bearer sk_live_0123456789ab in a traceback", {"sk_live_0123456789ab"})


def test_raw_email_in_a_log_line_is_found_and_a_masked_one_is_not() -> None:
    assert log_leaks(LINE % "jane.doe@example.com", set())
    assert not log_leaks(LINE % "ja***@example.com", set())


def test_emails_outside_log_lines_are_not_its_business() -> None:
    assert not log_leaks('curl -d \'{"email": "jane@example.com"}\'', set())
