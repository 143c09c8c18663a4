"""LLaVA-CoT's judge vs the fast verdict-only judge, on the SAME stage candidates and comparisons.

On the first ``--limit`` problems of the easy reasoning-gym ``chain_sum`` set (see ``_study.py``),
with the embedded SmolLM2-135M (llama.cpp) as policy and as its own judge:

1. ``stage_beam --preset llava-cot`` at N candidates per stage: LLaVA-CoT's stage prompts, pool
   knockout, its reason-first judge prompts ("Since [reason], I choose response [1/2].") and the
   reasoning check inside every REASONING comparison;
2. the same search with the fast judge: slowthink's verdict-only prompts (reply prefilled with
   ``Better response: [``), no check. Same policy settings and seeds; every request goes through one
   cache, so where the two searches keep the same prefix they get the SAME samples (stage candidates
   are sampled once);
3. every comparison either search made (the union, deduplicated) is judged by BOTH judges (the
   cache answers those a search already asked), and compared: agreement of the two judges, share of
   first-shown winners (position bias), parse rate, judge tokens per comparison.

Reports accuracy, policy and judge tokens per problem of both searches. Prints JSON and writes
``bench/results/judge_prompts.json``.

    .venv/bin/python bench/bench_judge_prompts.py --limit 6 --n 4 --threads 1   # the run in RESULTS.md (~25 min CPU)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _study import RG_CONFIG, RG_SIZE
from slowthink.benchmarks import load_benchmark
from slowthink.engines import load_engine
from slowthink.formats import get_format
from slowthink.grading import grade
from slowthink.scorers.base import CheckQuery, Comparison
from slowthink.scorers.judge import LLMJudge
from slowthink.search import solve
from slowthink.search.presets import apply_preset
from slowthink.types import Problem, Trace

RESULTS = Path(__file__).parent / "results" / "judge_prompts.json"


class CachedEngine:
    """Answers a request it has seen before from its cache (same messages, prefix, sampling and seed):
    both searches and both judges share samples and verdicts. Tokens are reported as generated, so
    each method's compute stays its own; ``fresh`` counts the requests that really ran."""

    def __init__(self, inner) -> None:
        self.inner, self.cache, self.fresh, self.hits = inner, {}, 0, 0
        self.name, self.supports_images = inner.name, inner.supports_images

    @staticmethod
    def key(r) -> str:
        msgs = [(m.role, m.content, tuple(map(str, m.images))) for m in r.messages]
        return repr(
            (
                msgs,
                r.prefix,
                r.n,
                tuple(r.stop),
                r.max_tokens,
                r.temperature,
                r.top_p,
                r.seed,
                r.logprobs,
                r.top_logprobs,
            )
        )

    def generate(self, requests):
        keys = [self.key(r) for r in requests]
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if todo:
            first = {k: r for k, r in zip(keys, requests)}
            outs = self.inner.generate([first[k] for k in todo])
            self.cache.update(zip(todo, outs))
            self.fresh += len(todo)
        self.hits += len(keys) - len(todo)
        return [self.cache[k] for k in keys]


def node_text(trace: Trace, node_id: int) -> str:
    parts, cur = [], node_id
    while cur is not None:
        parts.append(trace.nodes[cur].text)
        cur = trace.nodes[cur].parent
    return "".join(reversed(parts))


def comparisons_of(trace: Trace, problem: Problem) -> list[Comparison]:
    out = []
    for d in trace.decisions:
        a, b = trace.nodes[d["a"]], trace.nodes[d["b"]]
        out.append(Comparison(problem, node_text(trace, a.parent), a.text, b.text, d["stage"]))
    return out


def judge_all(comps: list[Comparison], fast: LLMJudge, paper: LLMJudge) -> list[dict]:
    """Both judges on every comparison; the paper's decision with its reasoning check."""
    v_fast = fast.compare(comps)
    v_paper = paper.compare(comps)
    reasoning = [i for i, c in enumerate(comps) if c.stage == "reasoning"]
    queries = {}
    for i in reasoning:
        for cand in (comps[i].a, comps[i].b):
            queries.setdefault(
                (comps[i].problem.id, comps[i].prefix, cand),
                CheckQuery(comps[i].problem, comps[i].prefix, cand),
            )
    checks = dict(zip(queries, paper.check_reasoning(list(queries.values())))) if queries else {}
    rows = []
    for i, c in enumerate(comps):
        row = {
            "stage": c.stage,
            "fast": v_fast[i].winner,
            "fast_parsed": v_fast[i].parsed,
            "fast_tokens": v_fast[i].prompt_tokens + v_fast[i].generated_tokens,
            "paper_pair": v_paper[i].winner,
            "paper_parsed": v_paper[i].parsed,
            "paper_tokens": v_paper[i].prompt_tokens + v_paper[i].generated_tokens,
            "paper": v_paper[i].winner,
            "by_check": False,
        }
        if c.stage == "reasoning":
            ca, cb = (checks[(c.problem.id, c.prefix, x)] for x in (c.a, c.b))
            row["check"] = [ca.ok, cb.ok]
            row["paper_tokens"] += (
                sum(x.prompt_tokens + x.generated_tokens for x in (ca, cb)) / 2
            )  # a check serves 2
            if (ca.ok is False) != (cb.ok is False):
                row["paper"], row["by_check"] = (1 if ca.ok is False else 0), True
        rows.append(row)
    return rows


def share(xs) -> float | None:
    xs = list(xs)
    return round(sum(xs) / len(xs), 3) if xs else None


def summary(rows: list[dict]) -> dict:
    pair = [r for r in rows if not r["by_check"]]
    return {
        "comparisons": len(rows),
        "by_stage": {s: sum(r["stage"] == s for r in rows) for s in dict.fromkeys(r["stage"] for r in rows)},
        "agreement_fast_vs_paper": share(r["fast"] == r["paper"] for r in rows),
        "agreement_fast_vs_paper_pairwise_only": share(r["fast"] == r["paper_pair"] for r in rows),
        "first_shown_wins": {
            "fast": share(r["fast"] == 0 for r in rows),
            "paper_with_check": share(r["paper"] == 0 for r in rows),
            "paper_pairwise_prompt": share(r["paper_pair"] == 0 for r in rows),
            "paper_where_check_did_not_decide": share(r["paper"] == 0 for r in pair),
        },
        "parsed": {
            "fast": share(r["fast_parsed"] for r in rows),
            "paper": share(r["paper_parsed"] for r in rows),
        },
        "judge_tokens_per_comparison": {
            "fast": round(sum(r["fast_tokens"] for r in rows) / max(1, len(rows)), 1),
            "paper": round(sum(r["paper_tokens"] for r in rows) / max(1, len(rows)), 1),
        },
        "reasoning_checks": {
            "comparisons": sum("check" in r for r in rows),
            "candidates_judged_incorrect": share(
                ok is False for r in rows if "check" in r for ok in r["check"]
            ),
            "candidates_unclear": share(ok is None for r in rows if "check" in r for ok in r["check"]),
            "decided_by_check": sum(r["by_check"] for r in rows),
        },
    }


def run_summary(traces: list[Trace], problems: list[Problem]) -> dict:
    right = [grade(t.answer, p).correct for t, p in zip(traces, problems)]
    k = len(traces)
    return {
        "accuracy": round(sum(right) / k, 3),
        "right": sum(right),
        "policy_generated_tokens": round(sum(t.compute.generated_tokens for t in traces) / k, 1),
        "policy_prompt_tokens": round(sum(t.compute.prompt_tokens for t in traces) / k, 1),
        "judge_tokens": round(
            sum(t.compute.scorer_prompt_tokens + t.compute.scorer_generated_tokens for t in traces) / k, 1
        ),
        "judge_generated_tokens": round(sum(t.compute.scorer_generated_tokens for t in traces) / k, 1),
        "first_shown_wins": share(d["winner"] == d["a"] for t in traces for d in t.decisions),
        "decided_by_check": sum(d.get("by") == "check" for t in traces for d in t.decisions),
        "errors": sum(t.error is not None for t in traces),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--n", type=int, default=4, help="candidates per stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    t0 = time.perf_counter()
    problems = load_benchmark(
        "reasoning-gym:chain_sum", None, limit=args.limit, size=RG_SIZE, seed=1234, **RG_CONFIG
    ).problems
    engine = CachedEngine(load_engine("llamacpp", n_threads=args.threads))
    preset = apply_preset("llava-cot", ["stage_beam"], fmt=None, scorer=None, options={"n": args.n})
    fmt = get_format(preset.format)
    paper = LLMJudge(engine, prompts="llava-cot")
    fast = LLMJudge(engine)
    runs, timings = {}, {}
    for name, judge, precheck in (("paper", paper, True), ("fast", fast, False)):
        t = time.perf_counter()
        opts = {**preset.options, "precheck": precheck}
        runs[name] = solve(problems, engine, fmt, "stage_beam", scorer=judge, seed=args.seed, **opts)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"{name}: {timings[name]}s, {engine.fresh} fresh requests so far", file=sys.stderr, flush=True)
    by_id = {p.id: p for p in problems}
    seen, comps = set(), []
    for traces in runs.values():
        for t in traces:
            for c in comparisons_of(t, by_id[t.problem_id]):
                key = (c.problem.id, c.prefix, c.a, c.b, c.stage)
                if key not in seen:
                    seen.add(key)
                    comps.append(c)
    t = time.perf_counter()
    rows = judge_all(comps, fast, paper)
    timings["cross_judging"] = round(time.perf_counter() - t, 1)
    shared = sum(
        1
        for a, b in zip(runs["paper"], runs["fast"])
        for x, y in zip(a.nodes[1:], b.nodes[1:])
        if x.text == y.text and x.parent == y.parent
    )
    report = {
        "model": "SmolLM2-135M-Instruct (llama.cpp, embedded GGUF), policy and judge",
        "dataset": f"reasoning-gym chain_sum (2 one-digit terms, seed 1234), first {args.limit}",
        "n": args.n,
        "seed": args.seed,
        "threads": args.threads,
        "policy": {k: v for k, v in preset.options.items()} | {"format": preset.format},
        "runs": {name: run_summary(traces, problems) for name, traces in runs.items()},
        "same_comparisons": summary(rows),
        "shared_tree_nodes": shared,
        "requests": {"fresh": engine.fresh, "from_cache": engine.hits},
        "wall_s": timings | {"total": round(time.perf_counter() - t0, 1)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
