"""Accuracy and tokens of direct / cot / quick / majority@{1,4,8} on the embedded model.

Datasets: the first ``--limit`` GSM8K test problems (../shared/data/gsm8k) and ``--limit`` easy
reasoning-gym ``chain_sum`` problems (2 terms, 1 digit, seed 1234). Majority is sampled once at
N=max and smaller N are the first k samples of the same run (their tokens counted alone).
Prints one JSON object.

    .venv/bin/python bench/bench_strategies.py --limit 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from slowthink.benchmarks import load_benchmark
from slowthink.engines import RecordingEngine, load_engine
from slowthink.formats import get_format
from slowthink.grading import grade
from slowthink.search import solve
from slowthink.search.majority import vote

RG_CONFIG = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}


def datasets(limit: int, which: list[str]):
    if "chain_sum" in which:
        yield (
            "chain_sum",
            load_benchmark("reasoning-gym:chain_sum", size=limit, seed=1234, **RG_CONFIG).problems,
        )
    if "gsm8k" in which:
        yield "gsm8k", load_benchmark("gsm8k", limit=limit).problems


def score(traces, problems) -> dict:
    by_id = {p.id: p for p in problems}
    correct = sum(grade(t.answer, by_id[t.problem_id]).correct for t in traces)
    gen = sum(t.compute.generated_tokens for t in traces)
    return {
        "accuracy": round(correct / len(traces), 4),
        "correct": correct,
        "no_answer": sum(t.answer is None for t in traces),
        "generated_tokens_per_problem": round(gen / len(traces), 1),
        "engine_calls": max(t.compute.engine_calls for t in traces),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--n", type=int, default=8, help="largest majority N (N=1,4,..,n derived)")
    ap.add_argument("--datasets", default="chain_sum,gsm8k")
    ap.add_argument("--majority-format", default="free")
    ap.add_argument("--only-majority", action="store_true", help="skip direct/cot/quick")
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    args = ap.parse_args()
    engine = RecordingEngine(load_engine("llamacpp", n_threads=args.threads))
    report: dict = {"model": "SmolLM2-135M-Instruct Q4_1 (llama.cpp)", "limit": args.limit, "results": {}}
    for name, problems in datasets(args.limit, args.datasets.split(",")):
        res: dict = {}
        runs = [
            ("direct", "free", {}),
            ("cot", "free", {"max_tokens": args.max_tokens}),
            ("cot", "atomic", {"max_tokens": args.max_tokens}),
            ("quick", "atomic", {}),
        ]
        for strategy, fmt, opts in [] if args.only_majority else runs:
            t0 = time.perf_counter()
            traces = solve(problems, engine, get_format(fmt), strategy, seed=1234, **opts)
            res[f"{strategy}/{fmt}"] = {
                **score(traces, problems),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            print(name, strategy, fmt, res[f"{strategy}/{fmt}"], file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        traces = solve(
            problems,
            engine,
            get_format(args.majority_format),
            "majority",
            n=args.n,
            seed=1234,
            temperature=0.7,
            max_tokens=args.max_tokens,
        )
        wall = time.perf_counter() - t0
        by_id = {p.id: p for p in problems}
        ks = sorted({1, *[k for k in (2, 4, 8, 16) if k <= args.n], args.n})
        for k in ks:
            correct = tokens = oracle = 0
            for t in traces:
                kids = [n for n in t.nodes if n.parent == 0][:k]
                winner, _ = vote(kids, by_id[t.problem_id])
                correct += bool(winner) and grade(winner.answer, by_id[t.problem_id]).correct
                oracle += any(grade(n.answer, by_id[t.problem_id]).correct for n in kids if n.answer)
                tokens += sum(n.generated_tokens for n in kids)
            res[f"majority@{k}/{args.majority_format}"] = {
                "accuracy": round(correct / len(traces), 4),
                "correct": correct,
                "oracle_any_correct": round(oracle / len(traces), 4),
                "generated_tokens_per_problem": round(tokens / len(traces), 1),
            }
        res[f"majority@{args.n}/{args.majority_format}"]["wall_s"] = round(wall, 1)
        print(name, "majority", res, file=sys.stderr, flush=True)
        report["results"][name] = res
    report["engine_calls_total"] = engine.n_calls
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
