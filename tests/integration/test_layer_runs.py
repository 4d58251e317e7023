"""The layer as `sam build` makes it (sourceless bytecode, pruned) really runs the handlers
(each source's ingest and process module).

Lambda's arm64 wheels cannot load here, so the same layer Makefile builds the layer for
this machine's platform; the handlers are then imported in an interpreter that sees only
that layer, the function's code and what the Lambda runtime ships (boto3 and its deps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from partnero_bridge_cli.local.template import read_stack
from tests.support.inprocess import template_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3")


SCRIPT = """
import importlib, json, sys, types
ingest, process = importlib.import_module("ingest"), importlib.import_module("process")

class Context:
    function_name = "probe"; function_version = "$LATEST"; memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    aws_request_id = "probe"
    def get_remaining_time_in_millis(self): return 30000

def event(method, path, headers, body=""):
    return {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
            "rawQueryString": "", "headers": headers, "body": body, "isBase64Encoded": False,
            "requestContext": {"http": {"method": method, "path": path,
                                        "sourceIp": "203.0.113.9", "protocol": "HTTP/1.1",
                                        "userAgent": "probe"},
                               "requestId": "r1", "routeKey": f"{method} {path}",
                               "stage": "$default", "timeEpoch": 0}}

answers = [ingest.handler(event(m, p, h, b), Context())["statusCode"]
           for m, p, h, b in json.loads(sys.argv[1])]
# A process function takes SQS batches only: anything else is an error, never an answer.
try:
    process.handler(event("POST", "/nowhere", {}), Context())
    refused = False
except Exception as exc:
    refused = type(exc).__name__ == "UnexpectedBatchTypeError"
import pydantic, aws_lambda_powertools
print(json.dumps({"answers": answers, "process_refuses_api_events": refused,
                  "pydantic": pydantic.__file__, "powertools": aws_lambda_powertools.__file__}))
"""

REQUESTS = {
    "signup": [
        ("OPTIONS", "/signup", {"origin": "https://shop.example"}, ""),
        # An unsigned call is a browser's, from an allowed origin.
        (
            "POST",
            "/signup",
            {"content-type": "application/json", "origin": "https://shop.example"},
            "{oops",
        ),
        ("POST", "/nowhere", {}, ""),
    ],
    "ecwid_order": [("POST", "/nowhere", {}, "")],
    "stripe_event": [("POST", "/nowhere", {}, "")],
}
EXPECTED = {"signup": [204, 400, 404], "ecwid_order": [404], "stripe_event": [404]}


def test_built_layer_runs_the_handlers(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT / "layers" / "common"),
            "build-CommonLayer",
            f"ARTIFACTS_DIR={tmp_path / 'layer'}",
            f"PLATFORM=manylinux2014_{os.uname().machine}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    layer = tmp_path / "layer" / "python"
    assert (layer / "pydantic" / "main.pyc").is_file()

    runtime = tmp_path / "runtime"  # what the Lambda runtime ships besides the stdlib
    runtime.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)

    functions = read_stack(ROOT).functions.values()
    for function, requests in REQUESTS.items():
        # Both modules read their settings at import, from what the template gives them.
        env = {
            name: value
            for spec in functions
            if spec.code_dir.name == function
            for name, value in template_environment(spec.logical_id).items()
        }
        env |= {
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
            # No rate-limit table here: the probe's unsigned call is not counted.
            "SIGNUP_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "functions" / function), str(layer), str(runtime)]
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # -S: no site-packages, so nothing comes from this project's virtualenv.
        run = subprocess.run(
            [sys.executable, "-S", "-c", SCRIPT, json.dumps(requests)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["answers"] == EXPECTED[function]
        assert result["process_refuses_api_events"] is True
        assert result["pydantic"].startswith(str(layer))
        assert result["pydantic"].endswith(".pyc")  # sourceless, as shipped
        assert result["powertools"].startswith(str(layer))
