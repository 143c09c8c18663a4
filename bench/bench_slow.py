"""Slow thinking on the embedded model: verifiers and searches vs majority at N=4 and N=8.

On ``--limit`` problems of each dataset (the easy reasoning-gym ``chain_sum`` set and/or GSM8K),
side by side in one study (run folders under ``--out``, shared with ``bench_scaling.py``; every
part is resumable and skips what a folder already holds):

* **free** format, N=8 samples per problem drawn ONCE (best_of_n with the self-judge's knockout);
  the same samples are then re-selected, without generating anything, by ``majority`` (vote),
  ``best_of_n`` select=score and select=weighted with the ``symbolic`` checker, and the judge's
  recorded bracket; N=4 derived from sub-samples / sub-brackets. ``--swap-judge`` adds a new
  knockout of the same samples with every comparison asked in both orders (judge compute only). Same samples, four selection
  rules: the comparison is about the verifier, not sampling luck. ``oracle`` = any sample right.
* **atomic** format, ``symbolic`` scorer: majority and best_of_n (score, weighted) the same way, and
  the step-wise searches ``greedy_step`` and ``step_beam`` (beam 2) with N candidates per step;
* **stages** format: ``stage_beam`` with the self-judge (LLaVA-CoT), N candidates per stage.

Prints one JSON object: per dataset a table row per (method, format, N) with accuracy, its Wilson
95% interval, the oracle, generated tokens per problem of the policy and of the scorer/judge,
and the wall time of the run folder; plus ratios against majority on the same samples.

    .venv/bin/python bench/bench_slow.py --limit 50 --datasets chain_sum --threads 2
    .venv/bin/python bench/bench_slow.py --limit 2 --ns 2,4 --out runs/slow_smoke   # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from _study import MAX_TOKENS, dataset_options, run_folder
from slowthink.engines import RecordingEngine, load_engine
from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.config import Job
from slowthink.evaluate.metrics import grade_dict, job_rows, token_total
from slowthink.evaluate.records import read_records
from slowthink.evaluate.runner import load_problems
from slowthink.formats import get_format
from slowthink.scorers import load_scorer
from slowthink.search import solve
from slowthink.search.base import SAMPLING_FIELDS
from slowthink.types import Problem, Trace

PARTS = ("free", "atomic", "stages")
KEEP = (
    "method",
    "format",
    "n",
    "derived_from",
    "problems",
    "accuracy",
    "ci95",
    "oracle",
    "no_answer",
    "policy_generated_tokens",
    "policy_prompt_tokens",
    "scorer_generated_tokens",
    "scorer_prompt_tokens",
    "total_tokens",
    "wall_time_s",
)


class NoEngine:
    """Re-selection must not generate: any call is a bug."""

    name, supports_images = "none", False

    def generate(self, requests):
        raise AssertionError(f"re-selection tried to generate ({len(requests)} requests)")


def method_name(row: dict) -> str:
    s, sel = row["strategy"], row.get("select")
    return f"{s} ({sel})" if sel else s


def reselect(
    folder,
    strategy_select: list[tuple[str, str | None]],
    scorer,
    fmt_name: str,
    ns: list[int],
    seeds: int,
    problem_ids: list[str],
) -> list[dict]:
    """Rows for other selection rules applied to the samples recorded in ``folder`` (no generation)."""
    records, _ = read_records(folder / "records.jsonl")
    src = {}
    for (pid, _s, _k), r in records.items():
        usable = r.get("pathwise") and r.get("trace") and not r.get("error") and r.get("n", 0) >= max(ns)
        if usable and (pid not in src or r["n"] < src[pid]["n"]):
            src[pid] = r
    ids = [p for p in problem_ids if p in src]
    problems = {p: Problem.from_dict(src[p]["problem"]) for p in ids}
    traces = {p: Trace.from_dict(src[p]["trace"]) for p in ids}
    rows = []
    for strategy, select in strategy_select:
        first = next(iter(traces.values()), None)
        opts = {k: first.config.get(k) for k in SAMPLING_FIELDS} if first else {}
        if select:
            opts["select"] = select
        new = solve(
            [problems[p] for p in ids],
            NoEngine(),
            get_format(fmt_name),
            strategy,
            scorer=scorer if strategy != "majority" else None,
            reuse=traces,
            n=max(ns),
            **opts,
        )
        job = Job(strategy, max(ns), tuple(ns), pathwise=True)
        recs = {}
        for t in new:
            recs[(t.problem_id, strategy, job.key)] = {
                "id": t.problem_id,
                "strategy": strategy,
                "key": job.key,
                "n": max(ns),
                "pathwise": True,
                "problem": problems[t.problem_id].to_dict(),
                "trace": t.to_dict(),
                "answer": t.answer,
                "grade": grade_dict(t.answer, problems[t.problem_id]),
                "compute": dataclasses.asdict(t.compute),
                "error": t.error,
            }
        for row in job_rows([job], recs, ids, seeds):
            row["select"] = select
            row["wall_time_s"] = None  # the source traces' wall time includes their own selection (judge)
            rows.append(row)
    return rows


def run_part(part: str, name: str, args, engine) -> list[dict]:
    ns = [int(x) for x in args.ns.split(",")]
    common = dict(
        **dataset_options(name),
        limit=args.limit,
        ns=ns,
        seeds=args.seeds,
        seed=args.seed,
        batch_size=args.batch_size,
        max_tokens=MAX_TOKENS[part],
    )
    if part == "free":
        cfg = EvalConfig(
            **common,
            strategies=["best_of_n"],
            format="free",
            scorer="judge",
            select="judge",
            out=str(run_folder(args.out, name, "free", "judge", "judge")),
        )
    elif part == "atomic":
        cfg = EvalConfig(
            **common,
            strategies=args.atomic_strategies.split(","),
            format="atomic",
            scorer="symbolic",
            out=str(run_folder(args.out, name, "atomic", "symbolic")),
        )
    else:
        cfg = EvalConfig(
            **common,
            strategies=["stage_beam"],
            format="stages",
            scorer="judge",
            out=str(run_folder(args.out, name, "stages", "judge")),
        )
    t0 = time.perf_counter()
    res = run_eval(cfg, engine=engine, progress=not args.no_progress)
    print(
        f"{cfg.out}: {res.new_records} new records, {time.perf_counter() - t0:.0f}s",
        file=sys.stderr,
        flush=True,
    )
    rows = []
    for r in res.rows:
        r = {
            **r,
            "select": ("judge" if part == "free" else "score") if r["strategy"] == "best_of_n" else None,
        }
        if r["strategy"] == "stage_beam":
            r["select"] = "judge"
        rows.append(r)
    problem_ids = [p.id for p in load_problems(cfg).problems]
    symbolic = load_scorer("symbolic")
    if part == "free":
        rows += reselect(
            res.out_dir,
            [("majority", None), ("best_of_n", "score"), ("best_of_n", "weighted")],
            symbolic,
            "free",
            ns,
            args.seeds,
            problem_ids,
        )
        if args.swap_judge:  # the same samples, judged in both orders (position-swap debiasing)
            swap = load_scorer("judge#swap=true", engine=engine)
            for r in reselect(
                res.out_dir, [("best_of_n", "judge")], swap, "free", ns, args.seeds, problem_ids
            ):
                rows.append({**r, "select": "judge, swapped"})
    elif part == "atomic":
        rows += reselect(
            res.out_dir, [("best_of_n", "weighted")], symbolic, "atomic", ns, args.seeds, problem_ids
        )
    out = []
    for r in rows:
        r = {**r, "method": method_name(r), "format": part}
        out.append({k: r.get(k) for k in KEEP})
    return out


def ratios(rows: list[dict]) -> dict:
    out = {}
    for r in rows:
        base = next(
            (
                m
                for m in rows
                if m["method"] == "majority" and m["format"] == r["format"] and m["n"] == r["n"]
            ),
            None,
        )
        if base is None or r["method"] == "majority" or r["accuracy"] is None:
            continue
        out[f"{r['format']}/{r['method']} - majority @N={r['n']}"] = round(
            r["accuracy"] - base["accuracy"], 4
        )
    return out


def markdown(report: dict) -> str:
    """The rows as one markdown table per dataset."""
    lines = []
    for name, d in report["datasets"].items():
        lines += [
            f"### {name} (first {report['limit']})",
            "",
            "| format | method | N | accuracy [95% CI] | any sample right | policy generated tok / problem "
            "| scorer tok / problem (prompt + generated) | total tok / problem (policy + scorer, prompt + "
            "generated) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in d["rows"]:
            ci = r["ci95"] or [0, 0]
            oracle = "" if r["oracle"] is None else f"{r['oracle']:.2f}"
            scorer = (r["scorer_prompt_tokens"] or 0) + (r["scorer_generated_tokens"] or 0)
            lines.append(
                f"| {r['format']} | {r['method']} | {r['n']} | {r['accuracy']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
                f"| {oracle} | {r['policy_generated_tokens']:.0f} | {scorer:.0f} | {token_total(r):.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--datasets", default="chain_sum,gsm8k")
    ap.add_argument("--parts", default=",".join(PARTS), help="free, atomic, stages (see above)")
    ap.add_argument(
        "--atomic-strategies",
        default="majority,best_of_n,greedy_step,step_beam",
        help="strategies of the atomic part (run a subset to split the work between processes)",
    )
    ap.add_argument("--ns", default="4,8", help="N values (powers of two: the judge derives sub-brackets)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument(
        "--out", default="runs/study", help="root of the run folders (shared with bench_scaling.py)"
    )
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--swap-judge",
        action="store_true",
        help="free part: also re-select the same samples with the judge asked in both orders",
    )
    ap.add_argument("--markdown", action="store_true", help="print markdown tables instead of JSON")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    args = ap.parse_args()
    engine = RecordingEngine(load_engine("llamacpp", n_threads=args.threads))
    report: dict = {
        "model": "SmolLM2-135M-Instruct (llama.cpp, embedded GGUF)",
        "limit": args.limit,
        "ns": args.ns,
        "seeds": args.seeds,
        "datasets": {},
    }
    t_all = time.perf_counter()
    for name in [d for d in args.datasets.split(",") if d]:
        rows = []
        for part in [p for p in args.parts.split(",") if p]:
            if part not in PARTS:
                raise SystemExit(f"unknown part '{part}': choose from {', '.join(PARTS)}")
            rows += run_part(part, name, args, engine)
        report["datasets"][name] = {"rows": rows, "ratios": ratios(rows)}
    report["engine_calls_total"] = engine.n_calls
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    print(markdown(report) if args.markdown else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
