"""template.yaml passes the same linters a deploy would run (offline, no credentials)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tools of the environment running the tests (the project's virtualenv).
BIN_DIR = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN_DIR))
    if found is None:
        pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e '.[dev]')")
    return found


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        # Plain `sam validate` wants a region even though it stays offline.
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    }
    return subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sam_validate_lint() -> None:
    result = run([tool("sam"), "validate", "--lint", "--template-file", "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_nothing() -> None:
    result = run([tool("cfn-lint"), "template.yaml"])
    # cfn-lint exits non-zero for errors (2), warnings (4) and informational findings (8).
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout
