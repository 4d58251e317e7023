"""The product's functions stay short enough to read in one screen.

"Product" is what ships or what an operator runs: the layer, the functions and the CLI's
commands (not the local stack's fakes, the bench or the tests). A function's length counts
its body from the first statement after the docstring to its last line, nested functions
included: a docstring that gives shapes, units and sources is never the reason to split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [
    ROOT / "layers" / "common" / "partnero_bridge",
    ROOT / "functions",
    ROOT / "cli" / "partnero_bridge_cli",
]
NOT_PRODUCT = [ROOT / "cli" / "partnero_bridge_cli" / "local"]
MAX_BODY_LINES = 40


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    has_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    if has_docstring and len(body) > 1:
        first = body[1]
    end = node.end_lineno or node.lineno
    return end - first.lineno + 1


def _long_functions() -> list[str]:
    found = []
    for directory in PRODUCT:
        for path in sorted(directory.rglob("*.py")):
            if any(path.is_relative_to(skip) for skip in NOT_PRODUCT):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = _body_lines(node)
                    if lines > MAX_BODY_LINES:
                        where = path.relative_to(ROOT)
                        found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_product_function_is_over_40_lines() -> None:
    assert _long_functions() == []
