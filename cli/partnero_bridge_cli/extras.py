"""Which optional extra of the package brings a module the command could not import.

``pip install partnero-bridge`` brings what the Lambda layer ships; the command's own needs
are extras (pyproject.toml): ``cli`` for the commands that talk to a deployed stack,
``local`` for ``partnero-bridge run`` and the commands against its stack (``dev`` includes
both).
"""

from __future__ import annotations

from typing import Final

# Top-level module -> the extra that installs it.
_EXTRA_OF: Final = {
    "rich": "cli",
    "cfnlint": "local",
    "moto": "local",
    "werkzeug": "local",
    "flask": "local",
    "flask_cors": "local",
}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install for ``error``'s module, or None when no extra
    brings it (a broken installation, to be raised as it is)."""
    module = (error.name or "").partition(".")[0]
    extra = _EXTRA_OF.get(module)
    if extra is None:
        return None
    return (
        f"needs the '{extra}' extra ({module} is not installed): "
        f"pip install 'partnero-bridge[{extra}]', or `make install` in a checkout"
    )
