"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox

SANDBOX_KEY = "test-partnero-key-4f1c"


@pytest.fixture
def sandbox() -> Iterator[PartneroSandbox]:
    """A Partnero sandbox on an ephemeral 127.0.0.1 port, stopped after the test."""
    with PartneroSandbox(api_key=SANDBOX_KEY, partners=("demo-partner", "acme")) as server:
        yield server
