"""Starts ``partnero-bridge run`` as a user would and talks to it over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from partnero_bridge_cli.local.aws import client
from partnero_bridge_cli.local.template import STACK_NAME

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RunningStack:
    """``partnero-bridge run`` on free ports. ``json_logs``: the functions' JSON lines in
    :attr:`lines` (what the tests read), else the terminal's one line per outcome."""

    def __init__(self, env: Mapping[str, str], json_logs: bool = True) -> None:
        self.port = free_port()
        self.aws_port = free_port()
        self.sandbox_port = free_port()
        self.ecwid_port = free_port()
        self.stripe_api_port = free_port()
        self.shop_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.aws_url = f"http://127.0.0.1:{self.aws_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.ecwid_url = f"http://127.0.0.1:{self.ecwid_port}"
        self.stripe_api_url = f"http://127.0.0.1:{self.stripe_api_port}"
        self.shop_url = f"http://127.0.0.1:{self.shop_port}"
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PARTNERO_", "SIGNUP_", "ECWID_", "STRIPE_", "BRIDGE_", "AWS_"))
        }
        full_env.update(
            {
                "BRIDGE_PORT": str(self.port),
                "BRIDGE_AWS_PORT": str(self.aws_port),
                "BRIDGE_SANDBOX_PORT": str(self.sandbox_port),
                "BRIDGE_ECWID_PORT": str(self.ecwid_port),
                "BRIDGE_STRIPE_API_PORT": str(self.stripe_api_port),
                "BRIDGE_SHOP_PORT": str(self.shop_port),
                # Values may name the example shop's origin, known only now.
                **{k: v.replace("{shop_url}", self.shop_url) for k, v in env.items()},
            }
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("partnero-bridge")),
                "run",
                *(["--json-logs"] if json_logs else []),
            ],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(90):
            self.stop()
            raise AssertionError("the local stack did not start:\n" + self.output())
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ready."):
                self._ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    # -- AWS in the stack -----------------------------------------------------------------
    def aws(self, service: str) -> Any:
        return client(service, self.aws_url)

    def queue_url(self, suffix: str) -> str:
        return str(self.aws("sqs").get_queue_url(QueueName=f"{STACK_NAME}-{suffix}")["QueueUrl"])

    def queue_depth(self, suffix: str) -> int:
        attributes = self.aws("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(suffix),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def wait_until_drained(self, suffix: str, timeout: float = 30) -> None:
        wait_for(lambda: self.queue_depth(suffix) == 0, timeout, f"{suffix} to drain")

    def dead_letters(self, suffix: str) -> list[dict[str, Any]]:
        """Peek at a DLQ's messages (they become visible again shortly)."""
        return list(
            self.aws("sqs")
            .receive_message(
                QueueUrl=self.queue_url(f"{suffix}-dlq"),
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                VisibilityTimeout=1,
            )
            .get("Messages", [])
        )

    def cli(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run the `partnero-bridge` command against this stack, as its banner tells to."""
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("PARTNERO_", "SIGNUP_", "ECWID_", "STRIPE_", "BRIDGE_"))
            },
            "BRIDGE_PORT": str(self.port),
            "BRIDGE_ECWID_PORT": str(self.ecwid_port),
            "BRIDGE_STRIPE_API_PORT": str(self.stripe_api_port),
            **extra_env,
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        return subprocess.run(
            [str(Path(sys.executable).with_name("partnero-bridge")), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def cli_in_new_terminal(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run the `partnero-bridge` command as from a new terminal: no AWS_* variable and
        no port but the gateway's (the stack runs on free ports, not the default ones)."""
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(
                    ("PARTNERO_", "SIGNUP_", "ECWID_", "STRIPE_", "BRIDGE_", "AWS_")
                )
            },
            "BRIDGE_PORT": str(self.port),
            **extra_env,
        }
        return subprocess.run(
            [str(Path(sys.executable).with_name("partnero-bridge")), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return int(self.process.returncode)

    def port_is_free(self, port: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0
