"""Where the speed of batched search comes from, one mechanism at a time, on many problems.

The same search (same problems, seeds and settings) runs on the same engine with four ways of
sending its requests; consecutive pairs differ in ONE mechanism, so each ratio names what it
measures:

* ``batched``: slowthink as is: one ``generate`` per depth for ALL problems of the batch
  (candidates of a node as one request with ``n``, requests of a problem back to back);
* ``per_problem``: one ``generate`` per problem per depth (a problem's candidates still share
  their request) -> ``per_problem / batched`` = **cross-problem batching**;
* ``per_candidate``: one ``generate`` per candidate with ``n=1``, nothing else changed (llama.cpp
  still keeps the previous call's prompt in its KV cache) -> ``per_candidate / per_problem`` =
  **sharing one request among siblings** (``n>1``: one prefill for all candidates);
* ``per_candidate_reset`` (llama.cpp only): as ``per_candidate`` with the KV cache reset before
  every call, i.e. the whole prompt re-encoded for every candidate as the LLaVA-CoT and AtomThink
  code do with Hugging Face ``generate`` -> ``per_candidate_reset / per_candidate`` =
  **prefix-cache reuse across calls**.

``total`` = slowest / ``batched``. Ratios are given on wall time and on the process's CPU time
(the engine runs in process; CPU time is what to read when other jobs share the machine). Also the framework overhead: search wall time / time inside
the engine (goal <= 1.05), and whether the answers match (same seeds). Prints one JSON object.

    .venv/bin/python bench/bench_batching.py --limit 8 --n 4 --engines llamacpp,hf --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence

from slowthink.benchmarks import load_benchmark
from slowthink.engines import RecordingEngine, load_engine
from slowthink.formats import get_format
from slowthink.scorers import load_scorer
from slowthink.search import solve
from slowthink.types import Completion, Request


class PerProblemEngine:
    """One inner ``generate`` call per problem: requests grouped by their chat messages."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.supports_images = inner.name, inner.supports_images

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(repr([(m.role, m.content, m.images) for m in r.messages]), []).append(i)
        out: list[list[Completion]] = [[] for _ in requests]
        for idx in groups.values():
            for i, comps in zip(idx, self.inner.generate([requests[i] for i in idx])):
                out[i] = comps
        return out


class PerCandidateEngine:
    """One inner call per candidate (n=1, seed+i as the engine would use), optionally re-encoding
    the whole prompt each time (llama.cpp KV cache reset)."""

    def __init__(self, inner, reset_cache: bool = False):
        self.inner, self.reset_cache = inner, reset_cache
        self.name, self.supports_images = inner.name, inner.supports_images

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        out = []
        for r in requests:
            samples = []
            for i in range(r.n):
                one = dataclasses.replace(r, n=1, seed=None if r.seed is None else r.seed + i)
                if self.reset_cache and hasattr(self.inner, "reset_cache"):
                    self.inner.reset_cache()
                samples.extend(self.inner.generate([one])[0])
            out.append(samples)
        return out


VARIANTS = {
    "batched": lambda e: e,
    "per_problem": PerProblemEngine,
    "per_candidate": PerCandidateEngine,
    "per_candidate_reset": lambda e: PerCandidateEngine(e, reset_cache=True),
}

#: (slower variant, faster variant, what the ratio isolates)
RATIOS = [
    ("per_problem", "batched", "cross-problem batching (one call for all problems vs one per problem)"),
    ("per_candidate", "per_problem", "siblings in one request (n>1: one prefill) vs one call per candidate"),
    (
        "per_candidate_reset",
        "per_candidate",
        "prefix-cache reuse across calls (llama.cpp KV cache kept vs reset)",
    ),
]


def run_one(engine, strategy, fmt, scorer_spec, problems, n, **opts):
    rec = RecordingEngine(engine)
    scorer = load_scorer(scorer_spec, engine=rec)
    t0, c0 = time.perf_counter(), time.process_time()
    traces = solve(problems, rec, get_format(fmt), strategy, scorer=scorer, n=n, seed=1234, **opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "engine_calls": rec.n_calls,
        "engine_time_s": round(rec.engine_time_s, 2),
        "overhead_ratio": round(wall / rec.engine_time_s, 4) if rec.engine_time_s else None,
        "generated_tokens": sum(
            t.compute.generated_tokens + t.compute.scorer_generated_tokens for t in traces
        ),
        "prompt_tokens": sum(t.compute.prompt_tokens + t.compute.scorer_prompt_tokens for t in traces),
        "answers": [t.answer for t in traces],
    }


def speedups(slow: dict, fast: dict) -> dict:
    """Wall-time and CPU-time ratios. On a machine shared with other jobs, wall time depends on the
    load of the moment; the process's CPU time (all engine threads are in process) does much less."""
    return {
        "speedup_wall": round(slow["wall_s"] / fast["wall_s"], 3),
        "speedup_cpu": round(slow["cpu_s"] / fast["cpu_s"], 3) if fast["cpu_s"] else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=8, help="problems (cross-problem batching needs several)")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--engines", default="llamacpp")
    ap.add_argument("--max-depth", type=int, default=4, help="depth limit of step_beam")
    ap.add_argument("--strategies", default="step_beam", help="step_beam and/or stage_beam")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=None, help="threads of the engine (default: all cores)")
    args = ap.parse_args()
    problems = load_benchmark(
        "reasoning-gym:chain_sum",
        size=args.limit,
        seed=1234,
        min_terms=2,
        max_terms=2,
        min_digits=1,
        max_digits=1,
    ).problems
    report: dict = {"problems": len(problems), "n": args.n, "max_depth": args.max_depth, "results": {}}
    for spec in args.engines.split(","):
        engine = load_engine(spec, **({"n_threads": args.threads} if args.threads else {}))
        runs = [
            ("step_beam", "atomic", "symbolic", {"max_depth": args.max_depth}),
            ("stage_beam", "stages", "judge", {}),
        ]
        for strategy, fmt, scorer, opts in [r for r in runs if r[0] in args.strategies.split(",")]:
            key = f"{spec}/{strategy}"
            res: dict = {}
            for name in args.variants.split(","):
                if name == "per_candidate_reset" and not hasattr(engine, "reset_cache"):
                    continue  # only llama.cpp keeps a prompt cache across calls
                res[name] = run_one(VARIANTS[name](engine), strategy, fmt, scorer, problems, args.n, **opts)
                print(
                    key,
                    name,
                    {k: v for k, v in res[name].items() if k != "answers"},
                    file=sys.stderr,
                    flush=True,
                )
            ratios = {}
            for slow, fast, what in RATIOS:
                if slow in res and fast in res:
                    ratios[f"{slow} / {fast}"] = {**speedups(res[slow], res[fast]), "isolates": what}
            slowest = max(res, key=lambda k: res[k]["cpu_s"])
            ratios["total"] = {
                **speedups(res[slowest], res["batched"]),
                "isolates": f"all of the above ({slowest} / batched)",
            }
            report["results"][key] = {
                "variants": res,
                "ratios": ratios,
                "same_answers_as_batched": {
                    k: v["answers"] == res["batched"]["answers"] for k, v in res.items()
                },
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
