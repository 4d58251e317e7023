"""What the layer build leaves out (layers/common/prune.txt) is never imported by the
bridge: the main flows run in a child pytest, the handlers are imported with tracing on
(as deployed), and every module file either loaded is checked against the pruned paths."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.inprocess import read_stack, template_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FLOWS = [
    "tests/integration/test_signup_flow.py::test_referred_signup_creates_one_partnero_customer",
    "tests/integration/test_signup_flow.py::test_preflight_from_allowed_origin",
    "tests/integration/test_ecwid_flow.py::test_partial_then_full_refund_then_nothing",
    "tests/integration/test_stripe_flow.py::"
    "test_renewals_are_one_transaction_each_and_duplicates_add_nothing",
    "tests/integration/test_stripe_flow.py::test_dispute_reverses_and_a_won_dispute_restores",
    "tests/integration/test_dlq_cli.py::test_replay_processes_every_dead_letter_exactly_once",
]
# With tracing on, the tracer loads the X-Ray SDK when a handler module is imported and
# patches libraries on the first invocation. (Invoking a traced handler needs Lambda's
# trace segment, so the patching is called directly.)
IMPORT_TRACED = """
import importlib.util, sys
for number, path in enumerate(sys.argv[2:]):
    spec = importlib.util.spec_from_file_location(f"app{number}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
from partnero_bridge.observability import trace_libraries
trace_libraries()
files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
open(sys.argv[1], "w").write("\\n".join(sorted(f for f in files if f)))
"""


def pruned_patterns() -> list[str]:
    lines = (ROOT / "layers" / "common" / "prune.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _failures(output: str) -> str:
    return "\n".join(
        line for line in output.splitlines() if line.startswith(("FAILED", "ERROR", "E "))
    )[:3000]


def test_pruned_paths_are_never_imported(tmp_path: Path) -> None:
    flows, traced = tmp_path / "flows.txt", tmp_path / "traced.txt"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.support.module_census",
            *FLOWS,
        ],
        cwd=ROOT,
        env={**os.environ, "MODULE_CENSUS_FILE": str(flows)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, _failures(run.stdout)
    apps = [str(p) for p in sorted((ROOT / "functions").glob("*/*.py"))]
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_TRACED, str(traced), *apps],
        cwd=ROOT,
        env={
            **os.environ,
            # Each function reads its settings at import: the template's values do.
            **{
                name: value
                for function in read_stack(ROOT).functions
                for name, value in template_environment(function).items()
            },
            "POWERTOOLS_TRACE_DISABLED": "0",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "census",
            "LAMBDA_TASK_ROOT": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]

    site = Path(sysconfig.get_paths()["purelib"])
    lines = flows.read_text().splitlines() + traced.read_text().splitlines()
    relative = [str(Path(f).relative_to(site)) for f in lines if Path(f).is_relative_to(site)]
    assert any(r.startswith("aws_xray_sdk/ext/botocore") for r in relative)  # really traced
    assert any(r.startswith("aws_lambda_powertools/utilities/idempotency/") for r in relative)
    hits = sorted(
        {
            r
            for r in relative
            for pattern in pruned_patterns()
            if fnmatch.fnmatch(r, pattern) or fnmatch.fnmatch(r, f"{pattern}/*")
        }
    )
    assert not hits, f"pruned from the layer but imported: {hits}"
