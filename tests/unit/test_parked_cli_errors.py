"""`partnero-bridge parked` says in one line what is wrong with the AWS setup, as `dlq`
does, instead of a traceback (the local stack's banner tells a newcomer to run it)."""

from __future__ import annotations

import io
from argparse import Namespace

import boto3
import pytest

from partnero_bridge_cli import parked as parked_cli

pytestmark = pytest.mark.unit

AWS_VARIABLES = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # A fresh process has no default session: one left by another test may hold credentials.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def parked(action: str, stack_name: str | None = None) -> tuple[int, str, str]:
    args = Namespace(action=action, store=None, stack_name=stack_name, json=False)
    out, err = io.StringIO(), io.StringIO()
    code = parked_cli.run(args, out=out, env={}, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("action", ["list", "replay"])
def test_no_region_is_one_line_naming_the_variables(action: str) -> None:
    code, out, err = parked(action)

    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("partnero-bridge parked: no AWS region")
    assert "the local stack needs none" in err


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    code, _, err = parked("list")

    assert code == 1
    assert err.startswith("partnero-bridge parked: no AWS credentials")
    assert err.count("\n") == 1


@pytest.mark.parametrize("stack_name", [None, "bridge-prod"])
def test_a_local_stack_not_running_is_one_line(
    monkeypatch: pytest.MonkeyPatch, stack_name: str | None
) -> None:
    # Port 1 on this machine: nothing listens, the connection is refused at once.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")

    code, _, err = parked("list", stack_name)

    assert code == 1
    assert err.startswith("partnero-bridge parked: cannot reach http://127.0.0.1:1")
    assert "make run" in err
    assert err.count("\n") == 1
