"""Parallel sequences vs one sample at a time in the embedded llama.cpp engine (issue 12).

Two engines on the same llama.cpp build, side by side in one run: ``parallel=True`` (after: n
samples share one prefill and decode together, every problem keeps its prefix in its own
sequence) and ``parallel=False`` (before: ``Llama.generate``, one sample at a time, one KV cache).

1. ``throughput``: generated tokens/s for n = 1, 4, 8, 16 samples of one prompt (sampled, no stop):
   ``sequential`` = n calls with n=1 on the parallel=False engine (each re-uses the previous call's
   prompt); ``parallel_n_calls`` = the same n calls on the parallel=True engine (prompt also
   re-used: this isolates the engine change itself, numpy sampling included); ``parallel`` = ONE
   call with n on the parallel=True engine. ``parallel_n_calls / parallel`` isolates
   **parallel decode** (the prompt is paid once in both); ``sequential / parallel`` is the total.
2. ``search``: QuickThink (``quick``, atomic format) and ``greedy_step`` (symbolic checker, atomic,
   N candidates) on reasoning-gym chain_sum, problems sent ``--batch-size`` at a time as
   ``slowthink eval`` does: wall and CPU time, prompt tokens run through the model per problem
   (``engine.stats``: what the prefix caches saved is not counted), accuracy, and whether the
   answers are the same. Variants: ``before`` (parallel=False), ``after`` (parallel=True), and
   ``after_nocache`` (parallel=True with its prefix cache emptied before every call: samples still
   share a prefill and decode together) -> ``before / after_nocache`` = **shared prefill +
   parallel decode**, ``after_nocache / after`` = **per-problem prefix cache**.

Prints one JSON object (``--out`` also writes it).

    .venv/bin/python bench/bench_llamacpp_parallel.py --threads 2 --limit 40 --greedy-limit 12
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from slowthink.benchmarks import load_benchmark
from slowthink.engines import load_engine
from slowthink.formats import get_format
from slowthink.grading import grade
from slowthink.scorers import load_scorer
from slowthink.search import solve
from slowthink.types import Completion, Message, Request

STORY = [
    Message("system", "You are a helpful assistant who writes vivid, detailed stories."),
    Message("user", "Write a long story about a lighthouse keeper who finds a message in a bottle."),
]


class NoCacheEngine:
    """The parallel engine with its prefix cache emptied before every call."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.supports_images = inner.name, inner.supports_images

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        self.inner.reset_cache()
        return self.inner.generate(requests)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def throughput(par, seq, ns: list[int], max_tokens: int) -> dict:
    rows = {}
    for n in ns:
        req = Request(STORY, n=n, temperature=0.8, seed=7, max_tokens=max_tokens)
        ones = [Request(STORY, n=1, temperature=0.8, seed=7 + i, max_tokens=max_tokens) for i in range(n)]
        row = {}
        for name, engine, batches in [
            ("sequential", seq, [[r] for r in ones]),
            ("parallel_n_calls", par, [[r] for r in ones]),
            ("parallel", par, [[req]]),
        ]:
            engine.reset_cache()
            comps, wall, cpu = timed(lambda e=engine, bs=batches: [c for b in bs for c in e.generate(b)[0]])
            toks = sum(c.generated_tokens for c in comps)
            row[name] = {
                "generated_tokens": toks,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "tok_per_s": round(toks / wall, 2),
            }
        row["speedup_parallel_decode"] = round(
            row["parallel"]["tok_per_s"] / row["parallel_n_calls"]["tok_per_s"], 3
        )
        row["speedup_total"] = round(row["parallel"]["tok_per_s"] / row["sequential"]["tok_per_s"], 3)
        rows[str(n)] = row
        print("throughput", n, json.dumps(row), file=sys.stderr, flush=True)
    return rows


def search(engine, stats_engine, strategy: str, problems, batch_size: int, **opts) -> dict:
    by_id = {p.id: p for p in problems}
    before = stats_engine.stats
    traces = []

    def run():
        for i in range(0, len(problems), batch_size):
            scorer = load_scorer("symbolic") if strategy != "quick" else None
            traces.extend(
                solve(
                    problems[i : i + batch_size],
                    engine,
                    get_format("atomic"),
                    strategy,
                    scorer=scorer,
                    seed=1234,
                    **opts,
                )
            )

    _, wall, cpu = timed(run)
    after = stats_engine.stats
    n = len(problems)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "accuracy": round(sum(grade(t.answer, by_id[t.problem_id]).correct for t in traces) / n, 4),
        "prompt_tokens_decoded_per_problem": round(
            (after["prompt_tokens_decoded"] - before["prompt_tokens_decoded"]) / n, 1
        ),
        "prompt_tokens_sent_per_problem": round(sum(t.compute.prompt_tokens for t in traces) / n, 1),
        "generated_tokens_per_problem": round(sum(t.compute.generated_tokens for t in traces) / n, 1),
        "errors": sum(t.error is not None for t in traces),
        "answers": [t.answer for t in traces],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="throughput,quick,greedy_step")
    ap.add_argument("--ns", default="1,4,8,16", help="samples per prompt for the throughput part")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens per sample in the throughput part")
    ap.add_argument("--limit", type=int, default=40, help="chain_sum problems for quick")
    ap.add_argument("--greedy-limit", type=int, default=12, help="chain_sum problems for greedy_step")
    ap.add_argument("--greedy-n", type=int, default=4, help="candidates per step of greedy_step")
    ap.add_argument(
        "--batch-size", type=int, default=8, help="problems per solve call (slowthink eval's default)"
    )
    ap.add_argument("--variants", default="before,after", help="before, after, after_nocache")
    ap.add_argument("--n-seq", type=int, default=32, help="sequences of the parallel engine")
    ap.add_argument("--n-ctx", type=int, default=1024, help="tokens per sequence (both engines)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    par = load_engine("llamacpp", n_threads=args.threads, n_ctx=args.n_ctx, n_seq=args.n_seq)
    seq = load_engine("llamacpp", n_threads=args.threads, n_ctx=args.n_ctx, parallel=False)
    parts = args.parts.split(",")
    report: dict = {
        "threads": args.threads,
        "n_seq": args.n_seq,
        "n_ctx": args.n_ctx,
        "model": str(par.model_path),
    }
    if "throughput" in parts:
        report["throughput"] = throughput(par, seq, [int(x) for x in args.ns.split(",")], args.max_tokens)
    engines = {"before": (seq, seq), "after": (par, par), "after_nocache": (NoCacheEngine(par), par)}
    for strategy, limit, opts in [
        ("quick", args.limit, {}),
        ("greedy_step", args.greedy_limit, {"n": args.greedy_n}),
    ]:
        if strategy not in parts or limit <= 0:
            continue
        problems = load_benchmark(
            "reasoning-gym:chain_sum",
            size=limit,
            seed=1234,
            min_terms=2,
            max_terms=2,
            min_digits=1,
            max_digits=1,
        ).problems
        res = {}
        for name in args.variants.split(","):
            engine, stats_engine = engines[name]
            stats_engine.reset_cache()
            res[name] = search(engine, stats_engine, strategy, problems, args.batch_size, **opts)
            print(
                strategy,
                name,
                json.dumps({k: v for k, v in res[name].items() if k != "answers"}),
                file=sys.stderr,
                flush=True,
            )
        ratios = {}
        for slow, fast, what in [
            ("before", "after", "all three: shared prefill, parallel decode, per-problem prefix cache"),
            ("before", "after_nocache", "shared prefill + parallel decode (no prefix kept across calls)"),
            ("after_nocache", "after", "per-problem prefix cache across depths"),
        ]:
            if slow in res and fast in res:
                ratios[f"{slow} / {fast}"] = {
                    "speedup_wall": round(res[slow]["wall_s"] / res[fast]["wall_s"], 3),
                    "speedup_cpu": round(res[slow]["cpu_s"] / res[fast]["cpu_s"], 3),
                    "isolates": what,
                }
        report[strategy] = {
            "problems": limit,
            "batch_size": args.batch_size,
            **opts,
            "variants": res,
            "ratios": ratios,
            "same_answers_as_before": {k: v["answers"] == res["before"]["answers"] for k, v in res.items()}
            if "before" in res
            else None,
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
