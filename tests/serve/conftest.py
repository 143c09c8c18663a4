"""Real ``slowthink serve`` processes on 127.0.0.1 (uvicorn in a subprocess on a free port), each
stopped at the end of its scope; every wait is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTED = "py:tests.serve.serve_doubles:LoggedEngine"
VISION = "py:tests.serve.serve_doubles:VisionEngine"
KEY = "sk-test-serve-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return self.url + "/v1"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve(
    tmp: Path, engine: str, *args: str, env: dict[str, str] | None = None, wait_s: float = 30.0
) -> Iterator[Server]:
    """``slowthink serve --engine ENGINE ARGS`` on a free port, up once /v1/models answers."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "slowthink.cli", "serve", "--engine", engine, "--port", str(port), *args]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=environment)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}):\n{server.output()}")
            try:
                headers = (
                    {"Authorization": f"Bearer {env['SERVE_KEY']}"} if env and "SERVE_KEY" in env else {}
                )
                if httpx.get(server.base + "/models", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer within {wait_s} s:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def chat_body(model: str, question: str = "What is 2 + 3?", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Iterator[Server]:
    """A server over the scripted atomic engine (its generate calls logged to ``calls.log``)."""
    tmp = tmp_path_factory.mktemp("serve")
    with serve(tmp, f"{SCRIPTED}#log={tmp / 'calls.log'},p_right=1.0") as server:
        yield server


def post(
    server: Server, body, headers: Sequence[tuple[str, str]] = (), timeout: float = 20
) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else None
    return httpx.post(
        server.base + "/chat/completions",
        json=None if content is not None else body,
        content=content,
        headers=dict(headers),
        timeout=timeout,
    )
