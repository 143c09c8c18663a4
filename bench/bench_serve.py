"""What coalescing buys ``slowthink serve``: N clients at once, one batched search vs one each.

Starts ``slowthink serve`` twice on the same engine (default: the embedded SmolLM2-135M on llama.cpp,
one thread): with its batching window (``coalesced``) and with ``--no-coalesce``. Each time N
clients post a different "What is A + B?" question at the same moment; the figures are the wall
time until the last answer (after one warm-up request per server), the searches the server ran (distinct batches, from each response's
``slowthink.compute.batch_size``) and the engine calls they made. Prints one JSON object.

    .venv/bin/python bench/bench_serve.py --clients 10 --model 'majority?n=2' --max-tokens 24 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from _servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def run(args: argparse.Namespace, coalesce: bool) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "slowthink.cli",
        "serve",
        "--engine",
        args.engine,
        "--port",
        str(port),
        *([] if args.engine.startswith("py:") else ["--threads", str(args.threads)]),
        "--model-name",
        args.model,
        *(["--batch-window-ms", str(args.window_ms)] if coalesce else ["--no-coalesce"]),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }  # py: specs from tests/
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {' '.join(cmd)}")
            time.sleep(0.2)
        warm = {
            "model": args.model,
            "max_tokens": args.max_tokens,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        httpx.post(base + "/chat/completions", json=warm, timeout=600)  # llama.cpp's first call is slow
        bodies: list[dict] = [{}] * args.clients
        gate = threading.Barrier(args.clients + 1)

        def client(i: int) -> None:
            gate.wait()
            body = {
                "model": args.model,
                "max_tokens": args.max_tokens,
                "seed": 0,
                "messages": [{"role": "user", "content": f"What is {i + 2} + {i % 7 + 1}?"}],
            }
            bodies[i] = httpx.post(base + "/chat/completions", json=body, timeout=600).json()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        gate.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    computes = [b["slowthink"]["compute"] for b in bodies]
    searches = sum(1 / c["batch_size"] for c in computes)
    return {
        "wall_s": round(wall, 3),
        "searches": round(searches, 2),
        "engine_calls": round(sum(c["engine_calls"] / c["batch_size"] for c in computes), 2),
        "generated_tokens": sum(c["generated_tokens"] for c in computes),
        "answers": [b["choices"][0]["message"]["content"] for b in bodies],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="llamacpp")
    ap.add_argument("--model", default="majority?n=2", help="the served model name (strategy and settings)")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window-ms", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    coalesced = run(args, coalesce=True)
    separate = run(args, coalesce=False)
    result = {
        "engine": args.engine,
        "model": args.model,
        "clients": args.clients,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "window_ms": args.window_ms,
        "coalesced": coalesced,
        "not_coalesced": separate,
        "speedup": round(separate["wall_s"] / coalesced["wall_s"], 2),
        "same_answers": coalesced["answers"] == separate["answers"],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
