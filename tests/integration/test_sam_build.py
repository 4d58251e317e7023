"""`sam build` without a container produces a deployable layer without botocore."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_sam_build_without_container(tmp_path: Path) -> None:
    sam = Path(sys.executable).with_name("sam")
    if not sam.exists():
        pytest.skip("sam is not installed in this environment (make install adds it)")
    python = subprocess.run(
        [str(ROOT / "scripts" / "find-python.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
    }
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [str(sam), "build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "c")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    layer = build_dir / "CommonLayer" / "python"
    assert (layer / "partnero_bridge" / "processing.py").is_file()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert (layer / "aws_xray_sdk").is_dir()
    assert list(layer.glob("pydantic_core/*aarch64*.so")), "arm64 wheels expected"
    for shipped_by_runtime in ("botocore", "boto3", "s3transfer"):
        assert not (layer / shipped_by_runtime).exists()
    assert not list(layer.rglob("__pycache__"))
    # Third-party code ships compiled (Lambda cannot cache bytecode in /opt), sourceless.
    assert (layer / "pydantic" / "main.pyc").is_file()
    assert not (layer / "pydantic" / "main.py").exists()
    assert (layer / "partnero_bridge" / "processing.py").is_file()  # ours: readable tracebacks
    size = sum(f.stat().st_size for f in layer.rglob("*") if f.is_file())
    assert size < 10 * 1024 * 1024, f"layer is {size / 1048576:.2f} MiB unzipped"
    # Each source's ingest and process function ship the same code directory.
    for source in ("Signup", "EcwidOrder", "StripeEvent"):
        for function in (f"{source}IngestFunction", f"{source}ProcessFunction"):
            assert (build_dir / function / "ingest.py").is_file()
            assert (build_dir / function / "process.py").is_file()
            assert not (build_dir / function / "app.py").exists()
    built = (build_dir / "template.yaml").read_text()
    assert "Handler: ingest.handler" in built
    assert "Handler: process.handler" in built
    shutil.rmtree(build_dir)
