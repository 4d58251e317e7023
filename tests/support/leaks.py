"""Finding secrets and raw emails in captured logs (the suite fails on either)."""

from __future__ import annotations

import re
from types import ModuleType

_SECRET_NAME = re.compile(r"(SECRET|_KEY|TOKEN)$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def secrets_of(*modules: ModuleType | None) -> set[str]:
    found: set[str] = set()
    for module in filter(None, modules):
        for name, value in vars(module).items():
            # Short values would match by accident; every real test secret is longer.
            if _SECRET_NAME.search(name) and isinstance(value, str) and len(value) >= 12:
                found.add(value)
    return found


def log_leaks(text: str, secrets: set[str]) -> list[str]:
    problems = [f"secret {s[:4]}... appears" for s in secrets if s in text]
    for line in text.splitlines():
        if '"level":' in line:  # a structured log line written by the bridge
            raw = [m.group(0) for m in _EMAIL.finditer(line) if "***" not in m.group(0)]
            problems += [f"unmasked email {e.split('@')[0][:2]}...@{e.split('@')[1]}" for e in raw]
    return problems
