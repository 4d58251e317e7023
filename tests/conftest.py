"""Fixtures shared by every test tier."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.support.leaks import log_leaks, secrets_of

SANDBOX_KEY = "test-partnero-key-4f1c"


@pytest.fixture
def sandbox() -> Iterator[PartneroSandbox]:
    """A Partnero sandbox on an ephemeral 127.0.0.1 port, stopped after the test."""
    with PartneroSandbox(api_key=SANDBOX_KEY, partners=("demo-partner", "acme")) as server:
        yield server


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record what a test proved (events sent, processed, dead-lettered, ...); printed in
    the run's summary so `make test` shows the figures, not only a dot."""

    def record(**values: object) -> None:
        text = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in values.items())
        request.node.user_properties.append(("figures", text))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        f"{report.nodeid.split('::', 1)[1]}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "figures"
    ]
    if lines:
        terminalreporter.section("figures proved")
        for line in lines:
            terminalreporter.write_line(line)


# -- no secret and no raw email in any log line the suite captures ----------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.passed:
        return
    module = getattr(item, "module", None)
    secrets = secrets_of(module, sys.modules[__name__], sys.modules.get("tests.e2e.conftest"))
    problems = log_leaks("\n".join(content for _title, content in report.sections), secrets)
    if problems:
        report.outcome = "failed"
        report.longrepr = "captured logs leak: " + "; ".join(sorted(set(problems)))
