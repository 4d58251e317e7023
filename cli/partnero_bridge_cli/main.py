"""``partnero-bridge``: run the local stack and operate a bridge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _project_root(start: Path) -> Path:
    """The folder holding template.yaml: the current one or one of its parents."""
    for folder in (start, *start.parents):
        if (folder / "template.yaml").is_file():
            return folder
    raise SystemExit(
        "template.yaml not found here or in a parent folder; "
        "run this from a partnero-bridge checkout"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="partnero-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="start the local stack (gateway, moto, pollers, Partnero sandbox)",
        description="Start the local stack in the foreground. Settings come from "
        "environment variables; see the README's configuration reference.",
    )
    run.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project folder with template.yaml (default: found from here)",
    )
    args = parser.parse_args(argv)

    from partnero_bridge_cli.local.stack import run as run_stack

    return run_stack(args.root or _project_root(Path.cwd()))


if __name__ == "__main__":
    sys.exit(main())
