"""Installed without the dev tools, a command that needs an optional extra says which one
in one line instead of a traceback."""

from __future__ import annotations

import pytest

from partnero_bridge_cli import main as cli_main
from partnero_bridge_cli.extras import missing_extra

pytestmark = pytest.mark.unit


def test_the_extra_of_a_missing_module_is_named() -> None:
    assert missing_extra(ModuleNotFoundError("No module named 'moto'", name="moto.server")) == (
        "needs the 'local' extra (moto is not installed): pip install "
        "'partnero-bridge[local]', or `make install` in a checkout"
    )
    assert "'partnero-bridge[cli]'" in str(missing_extra(ModuleNotFoundError(name="rich")))
    # Not an extra's module: a broken installation, raised as it is.
    assert missing_extra(ModuleNotFoundError(name="pydantic")) is None


def test_the_command_says_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def needs_rich(_args: object) -> int:
        raise ModuleNotFoundError("No module named 'rich'", name="rich")

    commands = tuple(
        cli_main.Command(c.name, c.help, c.description, c.arguments, needs_rich)
        if c.name == "openapi"
        else c
        for c in cli_main.COMMANDS
    )
    monkeypatch.setattr(cli_main, "COMMANDS", commands)
    assert cli_main.main(["openapi"]) == 1
    assert capsys.readouterr().err == (
        "partnero-bridge openapi: needs the 'cli' extra (rich is not installed): pip install "
        "'partnero-bridge[cli]', or `make install` in a checkout\n"
    )
