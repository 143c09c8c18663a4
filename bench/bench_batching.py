"""Batched search vs one call per candidate (the original codebases' way), side by side.

For ``step_beam`` (symbolic scorer) and ``stage_beam`` (self-judge), N=8, on the same engine and
the same seeds:

* ``batched``: slowthink as is: one ``generate`` per depth for the whole batch, siblings back to
  back so the prompt/KV cache is reused;
* ``per_candidate``: every candidate is its own ``generate`` call with n=1 and (llama.cpp) the KV
  cache reset first, i.e. the whole prefix re-encoded for every candidate, as the LLaVA-CoT and
  AtomThink code do with Hugging Face ``generate``.

Also the framework overhead: search wall time / time spent inside the engine (goal <= 1.05).
Prints one JSON object.

    .venv/bin/python bench/bench_batching.py --limit 4 --engines llamacpp,hf
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from slowthink.benchmarks import load_benchmark
from slowthink.engines import RecordingEngine, load_engine
from slowthink.formats import get_format
from slowthink.scorers import load_scorer
from slowthink.search import solve


class PerCandidateEngine:
    """One engine call per candidate (n=1), optionally re-encoding the whole prompt each time."""

    def __init__(self, inner, reset_cache: bool = True):
        self.inner, self.reset_cache = inner, reset_cache
        self.name, self.supports_images = inner.name, inner.supports_images

    def generate(self, requests):
        out = []
        for r in requests:
            samples = []
            for i in range(r.n):
                one = dataclasses.replace(r, n=1, seed=None if r.seed is None else r.seed + i)
                if self.reset_cache and hasattr(self.inner, "llm"):
                    self.inner.llm.reset()
                samples.extend(self.inner.generate([one])[0])
            out.append(samples)
        return out


def run_one(engine, strategy, fmt, scorer_spec, problems, n, **opts):
    rec = RecordingEngine(engine)
    scorer = load_scorer(scorer_spec, engine=rec)
    t0 = time.perf_counter()
    traces = solve(problems, rec, get_format(fmt), strategy, scorer=scorer, n=n, seed=1234, **opts)
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "engine_calls": rec.n_calls,
        "engine_time_s": round(rec.engine_time_s, 2),
        "overhead_ratio": round(wall / rec.engine_time_s, 4) if rec.engine_time_s else None,
        "generated_tokens": sum(t.compute.generated_tokens + t.compute.scorer_generated_tokens for t in traces),
        "answers": [t.answer for t in traces],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--engines", default="llamacpp")
    ap.add_argument("--max-depth", type=int, default=6, help="depth limit of step_beam")
    ap.add_argument("--strategies", default="step_beam,stage_beam")
    ap.add_argument("--threads", type=int, default=None, help="threads of the engine (default: all cores)")
    args = ap.parse_args()
    problems = load_benchmark("reasoning-gym:chain_sum", size=args.limit, seed=1234, min_terms=2, max_terms=2,
                              min_digits=1, max_digits=1).problems
    report: dict = {"problems": len(problems), "n": args.n, "results": {}}
    for spec in args.engines.split(","):
        engine = load_engine(spec, **({"n_threads": args.threads} if args.threads else {}))
        runs = [("step_beam", "atomic", "symbolic", {"max_depth": args.max_depth}), ("stage_beam", "stages", "judge", {})]
        for strategy, fmt, scorer, opts in [r for r in runs if r[0] in args.strategies.split(",")]:
            batched = run_one(engine, strategy, fmt, scorer, problems, args.n, **opts)
            per = run_one(PerCandidateEngine(engine), strategy, fmt, scorer, problems, args.n, **opts)
            key = f"{spec}/{strategy}"
            report["results"][key] = {
                "batched": batched,
                "per_candidate": per,
                "speedup": round(per["wall_s"] / batched["wall_s"], 3),
                "same_answers": batched["answers"] == per["answers"],
            }
            print(key, report["results"][key], file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
