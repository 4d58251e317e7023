"""Runs each function of the template in worker processes and invokes them over HTTP."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import httpx

from partnero_bridge_cli.local.template import FunctionSpec

LogSink = Callable[[str], None]


@dataclass(frozen=True)
class Invocation:
    payload: Any
    error: str | None = None  # set when the function failed (raised, crashed or timed out)


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str], log: LogSink) -> None:
        self._spec = spec
        self._log = log
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "partnero_bridge_cli.local.worker",
                "--function-name",
                spec.logical_id,
                "--handler",
                spec.handler,
                "--memory",
                str(spec.memory_mb),
                "--timeout",
                str(spec.timeout),
            ],
            cwd=spec.code_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.url = ""

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("LISTENING "):
                port = int(line.split()[1])
                self.url = (
                    f"http://127.0.0.1:{port}/2015-03-31/functions/"
                    f"{self._spec.logical_id}/invocations"
                )
                break
            self._log(line.rstrip("\n"))
        else:
            raise RuntimeError(f"{self._spec.logical_id} worker exited before it was ready")
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._log(line.rstrip("\n"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LocalFunction:
    """A pool of warm workers for one function; ``concurrency`` invocations at a time."""

    def __init__(
        self, spec: FunctionSpec, env: dict[str, str], concurrency: int, log: LogSink
    ) -> None:
        self.spec = spec
        self._env = env
        self._log = log
        self._concurrency = concurrency
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=spec.timeout + 2)

    def start(self) -> None:
        workers = [self._spawn() for _ in range(self._concurrency)]
        for worker in workers:
            worker.wait_ready()
            self._idle.put(worker)

    def _spawn(self) -> _Worker:
        worker = _Worker(self.spec, self._env, self._log)
        with self._lock:
            self._all.append(worker)
        return worker

    def invoke(self, event: dict[str, Any]) -> Invocation:
        worker = self._idle.get()
        try:
            response = self._http.post(worker.url, content=json.dumps(event))
        except httpx.TimeoutException:
            # Like Lambda after Timeout: the environment is thrown away, a fresh one starts.
            self._replace(worker)
            return Invocation(None, f"Task timed out after {self.spec.timeout} seconds")
        except httpx.TransportError as exc:
            self._replace(worker)
            return Invocation(None, f"Runtime exited ({type(exc).__name__})")
        self._idle.put(worker)
        payload = response.json()
        if response.headers.get("x-amz-function-error"):
            return Invocation(payload, str(payload.get("errorMessage") or "function error"))
        return Invocation(payload)

    def _replace(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._all.remove(worker)
        fresh = self._spawn()
        fresh.wait_ready()
        self._idle.put(fresh)

    def stop(self) -> None:
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.stop()
        self._http.close()
