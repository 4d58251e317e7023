"""A pytest plugin that writes the files of every module loaded during the run to the
path in MODULE_CENSUS_FILE (used to prove the layer's pruned paths are never imported)."""

from __future__ import annotations

import os
import sys

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("MODULE_CENSUS_FILE")
    if not target:
        return
    files = sorted(
        {
            str(getattr(m, "__file__", None))
            for m in list(sys.modules.values())
            if getattr(m, "__file__", None)
        }
    )
    with open(target, "w", encoding="utf-8") as out:
        out.write("\n".join(files) + "\n")
