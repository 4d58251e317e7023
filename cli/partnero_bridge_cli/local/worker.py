"""One emulated Lambda container: imports a handler once and serves invocations over HTTP.

It speaks the shape of Lambda's Invoke API (``POST /2015-03-31/functions/<name>/invocations``;
a function error is a 200 with ``X-Amz-Function-Error``), one invocation at a time like a
real execution environment. The local stack runs each function in processes of its own so
that each gets its own environment variables and module state, as on Lambda.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, timeout: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Handler:
    module_name, _, function_name = spec.rpartition(".")
    module = importlib.import_module(module_name)
    handler: Handler = getattr(module, function_name)
    return handler


def serve(handler: Handler, function_name: str, memory_mb: int, timeout: int) -> None:
    class Invocations(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            event = json.loads(self.rfile.read(length) or b"{}")
            context = LocalContext(function_name, memory_mb, timeout)
            headers = {}
            try:
                result = handler(event, context)
                payload = json.dumps(result, default=str).encode()
            except Exception as exc:  # reported like Lambda's "Unhandled" function error
                traceback.print_exc()
                headers["X-Amz-Function-Error"] = "Unhandled"
                payload = json.dumps(
                    {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                ).encode()
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Invocations)
    # The parent reads this line to learn the port.
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--timeout", type=int, default=3)
    args = parser.parse_args()
    # Powertools warns when an invocation publishes no metric (a refusal, a duplicate): on
    # Lambda a line in CloudWatch, here noise on the developer's screen.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    handler = load_handler(args.handler)
    try:
        serve(handler, args.function_name, args.memory, args.timeout)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
