"""Shared by the benchmarks that talk to real servers: start one, wait until it answers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_models(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> str:
    """Poll ``url``/models until the server lists a model; its first model id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as resp:
                return json.loads(resp.read())["data"][0]["id"]
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the server at {url} did not start: {log.read_text(errors='replace')[-2000:]}")


def start_process(
    cmd: Sequence[str], url: str, env: dict | None = None
) -> tuple[subprocess.Popen, str, Path]:
    """Start ``cmd`` (a server on ``url``), log to a temp file; (process, first model id, log)."""
    log = Path(tempfile.mkdtemp()) / "server.log"
    proc = subprocess.Popen(
        list(cmd), stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    return proc, wait_models(url, proc, log), log


def start_server(gguf: str, threads: int = 1, n_ctx: int = 4096) -> tuple[subprocess.Popen, str, Path]:
    """``python -m llama_cpp.server`` on ``gguf``; (process, ``openai:URL#MODEL`` spec, log)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "False",
    ]  # fmt: skip
    proc, model, log = start_process(cmd, url)
    return proc, f"openai:{url}#{model}", log


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
