"""Importing a function's module must not touch the network or AWS (cold-start hygiene)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from partnero_bridge_cli.local.template import read_stack
from tests.support.inprocess import template_environment

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: sockets and boto3 clients raise if anything uses them.
_PROBE = """
import importlib.util, socket, sys
import boto3

def refuse(*args, **kwargs):
    raise AssertionError("I/O at import time")

socket.socket.connect = refuse
socket.create_connection = refuse
boto3.client = refuse
boto3.resource = refuse
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
"""


@pytest.mark.parametrize("module", ["ingest", "process"])
@pytest.mark.parametrize("function", ["signup", "ecwid_order", "stripe_event"])
def test_import_does_no_io(function: str, module: str) -> None:
    (logical_id,) = (
        spec.logical_id
        for spec in read_stack(ROOT).functions.values()
        if spec.code_dir.name == function and spec.handler == f"{module}.handler"
    )
    # The settings are read at import, from the environment the template gives.
    env = {
        **template_environment(logical_id),
        "PATH": "",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "functions" / function / f"{module}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
