"""4. Deployment size: ``sam build``'s layer and functions, unzipped and zipped."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.common import MB, ROOT, Target, heading, table

LIMIT = "< 10 MB unzipped"


def _sizes(directory: Path) -> tuple[int, int, int]:
    """(files, bytes unzipped, bytes zipped with deflate) of a directory's content."""
    files = [p for p in sorted(directory.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(directory).as_posix())
    return len(files), sum(p.stat().st_size for p in files), len(buffer.getvalue())


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def size(count: int) -> str:
    return f"{count / MB:.2f} MB" if count >= MB / 10 else f"{count / 1024:.1f} KB"


def sam_build(sam: str, build: Path, timeout: int) -> str | None:
    """Build into ``build``; None when it worked, else why not."""
    found = subprocess.run(  # noqa: S603 - the repository's own script
        ["sh", str(ROOT / "scripts" / "find-python.sh")],  # noqa: S607 - POSIX sh
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if found.returncode == 0 and found.stdout.strip():
        env["PATH"] = f"{Path(found.stdout.strip()).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sam, "build", "--build-dir", str(build), "--cache-dir", f"{build.parent}/cache"]
    try:
        done = subprocess.run(  # noqa: S603 - the venv's sam
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"sam build took over {timeout} s"
    if done.returncode != 0:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-6:]
        text = "\n".join(f"  {line.replace(str(build.parent), '<tmp>')}" for line in tail)
        return f"sam build failed (no network to fetch the layer's wheels?):\n{text}"
    return None


def section(args: Any, targets: list[Target]) -> None:
    heading("4. Deployment size (sam build, no container)")
    sam = Path(sys.executable).with_name("sam")
    sam_path = str(sam) if sam.exists() else shutil.which("sam")
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        build, started = Path(tmp) / "build", time.perf_counter()
        problem = (
            sam_build(sam_path, build, args.build_timeout) if sam_path else "sam is not installed"
        )
        if problem:
            print(f"skipped: {problem}")
            targets.append(Target("layer size", None, "not measured", LIMIT))
            return
        print(f"sam build succeeded in {time.perf_counter() - started:.0f} s")
        rows, layer_bytes = [], 0
        for artifact in sorted(p for p in build.iterdir() if p.is_dir()):
            files, unzipped, zipped = _sizes(artifact)
            layer_bytes = unzipped if artifact.name == "CommonLayer" else layer_bytes
            rows.append([artifact.name, files, size(unzipped), size(zipped)])
        print(table(["artifact", "files", "unzipped", "zipped (deflate)"], rows))
        print("MB = 1,048,576 bytes, as Lambda's size limits count them.")
        describe_layer(build / "CommonLayer" / "python", layer_bytes)
    targets.append(
        Target(
            "layer size", layer_bytes < 10 * MB, f"{layer_bytes / MB:.2f} MB unzipped", "< 10 MB"
        )
    )


def describe_layer(layer: Path, layer_bytes: int) -> None:
    if not layer.is_dir():
        return
    entries = sorted(((_tree_size(p), p.name) for p in layer.iterdir()), reverse=True)[:10]
    rows = [[name, f"{n / MB:.2f} MB", f"{n / layer_bytes:.0%}"] for n, name in entries]
    print("\nlargest top-level entries of the layer (python/):")
    print(table(["entry", "unzipped", "share"], rows))
    info = sum(_tree_size(p) for p in layer.glob("*.dist-info"))
    pyc = sum(1 for _ in layer.rglob("*.pyc"))
    print(f"*.dist-info total {info / MB:.2f} MB; .pyc files in the layer: {pyc}")
