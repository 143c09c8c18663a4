"""Engine figures, measured side by side in one run. Prints one JSON object.

* ``hf``: SmolLM2-135M (the embedded GGUF, converted once to an HF folder under .cache/):
  generated tokens/s for 8 candidates of one prompt as ONE batched call (n=8, shared prefill)
  vs 8 sequential calls (n=1, seeds s..s+7), same prompt and seeds.
* ``openai``: the OpenAI-compatible engine against a local ``llama_cpp.server`` on 127.0.0.1 vs
  llama-cpp-python in process, same model, requests and sampling: requests/s and the overhead
  per request.

    .venv/bin/python bench/bench_engines.py [--skip-hf] [--skip-openai]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request

from slowthink.engines import load_engine
from slowthink.engines.llamacpp import default_model_path
from slowthink.formats import get_format
from slowthink.types import Problem, Request

PROBLEM = Problem(
    id="b", question="A farmer has 12 cows and buys 7 more, then sells 5. How many cows are left?"
)


def request(n: int, seed: int, max_tokens: int) -> Request:
    fmt = get_format("atomic")
    return Request(
        fmt.messages(PROBLEM),
        prefix="Step 1:",
        n=n,
        stop=["\n\n"],
        max_tokens=max_tokens,
        temperature=0.8,
        seed=seed,
    )


def bench_hf(max_tokens: int, threads: int | None) -> dict:
    engine = load_engine("hf", **({"n_threads": threads} if threads else {}))
    engine.generate([request(1, 0, 4)])  # warm up
    t0 = time.perf_counter()
    [batched] = engine.generate([request(8, 100, max_tokens)])
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    sequential = [engine.generate([request(1, 100 + i, max_tokens)])[0][0] for i in range(8)]
    t_seq = time.perf_counter() - t0
    tok_b = sum(c.generated_tokens for c in batched)
    tok_s = sum(c.generated_tokens for c in sequential)
    return {
        "batched": {
            "wall_s": round(t_batched, 2),
            "generated_tokens": tok_b,
            "tokens_per_s": round(tok_b / t_batched, 1),
        },
        "sequential": {
            "wall_s": round(t_seq, 2),
            "generated_tokens": tok_s,
            "tokens_per_s": round(tok_s / t_seq, 1),
        },
        "throughput_ratio": round((tok_b / t_batched) / (tok_s / t_seq), 2),
        "same_texts": [c.text for c in batched] == [c.text for c in sequential],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_openai(n_requests: int, max_tokens: int, threads: int) -> dict:
    gguf = default_model_path()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("llama.cpp server did not start") from None
                time.sleep(0.25)
        http = load_engine(
            f"openai:{url}", max_concurrency=4, extra_body={"top_k": 0, "min_p": 0, "repeat_penalty": 1.0}
        )
        reqs = [request(1, 7 + i, max_tokens) for i in range(n_requests)]
        http.generate(reqs[:1])  # probe + warm up
        t0 = time.perf_counter()
        out_http = http.generate(reqs)
        t_http = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    local = load_engine("llamacpp", n_ctx=2048, n_threads=threads)
    local.generate(reqs[:1])
    t0 = time.perf_counter()
    out_local = local.generate(reqs)
    t_local = time.perf_counter() - t0
    return {
        "requests": n_requests,
        "openai_server": {
            "wall_s": round(t_http, 2),
            "requests_per_s": round(n_requests / t_http, 2),
            "generated_tokens": sum(c.generated_tokens for cs in out_http for c in cs),
            "errors": sum(c.finish_reason == "error" for cs in out_http for c in cs),
        },
        "in_process": {
            "wall_s": round(t_local, 2),
            "requests_per_s": round(n_requests / t_local, 2),
            "generated_tokens": sum(c.generated_tokens for cs in out_local for c in cs),
        },
        "overhead_per_request_s": round((t_http - t_local) / n_requests, 3),
        "ratio_http_over_inprocess": round(t_http / t_local, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--skip-openai", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="threads of every engine and of the server")
    args = ap.parse_args()
    report: dict = {}
    if not args.skip_hf:
        report["hf_batched_vs_sequential"] = bench_hf(args.max_tokens, args.threads)
        print(report, file=sys.stderr, flush=True)
    if not args.skip_openai:
        report["openai_vs_in_process"] = bench_openai(args.requests, args.max_tokens, args.threads)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
