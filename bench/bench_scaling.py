"""Test-time scaling study on the embedded model (SmolLM2-135M), through ``slowthink eval``'s machinery.

Datasets: easy reasoning-gym ``chain_sum`` (2 one-digit terms, seed 1234) and the first GSM8K test
problems, ``--limit`` of each (default 100). Strategies:

* ``majority`` and ``best_of_n`` (symbolic scorer, select=score): sampled ONCE at the largest N; every
  N in ``--ns`` (default 1..16) derived by subsampling those samples, ``--seeds`` subsets each;
* ``step_beam`` (symbolic scorer): one run per N in ``--stepwise-ns`` (default 1,2,4,8,16).

majority and best_of_n draw the same seeded samples, so they are generated once (both charged).
Run folders live under ``--out`` (default ``runs/study``), named by dataset, format and scorer and
shared with ``bench_slow.py``. Runs are resumable (kill it and run the same command again). Prints one JSON object: per dataset
the rows (accuracy, Wilson 95% CI, tokens of policy and scorer, calls, wall time) and ratios
measured side by side in the same run (each strategy's gain from N=1 to its largest N; best_of_n
minus majority at equal N; total tokens per problem, policy + scorer, prompt + generated, of
step_beam vs majority at the same N). Writes a
combined HTML report with plots next to the runs.

    .venv/bin/python bench/bench_scaling.py                                  # the full study (hours on 2 cores)
    .venv/bin/python bench/bench_scaling.py --datasets chain_sum --stepwise-ns 1 --threads 1   # what RESULTS.md reports
    .venv/bin/python bench/bench_scaling.py --limit 2 --ns 1,2 --stepwise-ns 1 --out runs/bench_smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _study import MAX_TOKENS, dataset_options, run_folder
from slowthink.engines import RecordingEngine, load_engine
from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.metrics import token_total
from slowthink.evaluate.report import write_compare_report

KEEP = (
    "strategy",
    "n",
    "derived_from",
    "problems",
    "accuracy",
    "ci95",
    "oracle",
    "no_answer",
    "errors",
    "ran",
    "accuracy_ran",
    "policy_generated_tokens",
    "policy_prompt_tokens",
    "scorer_generated_tokens",
    "scorer_prompt_tokens",
    "generated_tokens",
    "policy_tokens",
    "total_tokens",
    "engine_calls",
    "scorer_calls",
    "wall_time_s",
)


def compact(row: dict) -> dict:
    return {k: row[k] for k in KEEP if k in row}


def ratios(rows: list[dict]) -> dict:
    by = {(r["strategy"], r["n"]): r for r in rows}
    out: dict = {}
    for s in sorted({r["strategy"] for r in rows}):
        ns = sorted(n for (t, n) in by if t == s and n is not None)
        if len(ns) > 1:
            a, b = by[(s, ns[0])], by[(s, ns[-1])]
            out[f"{s}: accuracy N={ns[-1]} - N={ns[0]}"] = round(b["accuracy"] - a["accuracy"], 4)
            if token_total(a):
                out[f"{s}: total tokens N={ns[-1]} / N={ns[0]}"] = round(token_total(b) / token_total(a), 2)
    for (s, n), r in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        m = by.get(("majority", n))
        if m is None or s == "majority" or n is None:
            continue
        out[f"{s} - majority accuracy @N={n}"] = round(r["accuracy"] - m["accuracy"], 4)
        if token_total(m):
            out[f"{s} / majority total tokens @N={n}"] = round(token_total(r) / token_total(m), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100, help="problems per dataset")
    ap.add_argument("--datasets", default="chain_sum,gsm8k")
    ap.add_argument(
        "--ns", default="1-16", help="N of the path-wise strategies (largest sampled, rest derived)"
    )
    ap.add_argument("--stepwise-ns", default="1,2,4,8,16", help="N of step_beam (one run each)")
    ap.add_argument("--strategies", default="majority,best_of_n,step_beam")
    ap.add_argument("--format", default="atomic")
    ap.add_argument("--scorer", default="symbolic")
    ap.add_argument(
        "--aggregate",
        default=None,
        help="step scores -> path score for best_of_n/step_beam (default: each strategy's own; "
        "a run folder of its own, suffixed -agg<NAME>)",
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="runs/study", help="root of the run folders (shared with bench_slow.py)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    args = ap.parse_args()

    strategies = [s for s in args.strategies.split(",") if s]
    engine = RecordingEngine(load_engine("llamacpp", n_threads=args.threads))
    report: dict = {
        "model": "SmolLM2-135M-Instruct (llama.cpp, embedded GGUF)",
        "limit": args.limit,
        "format": args.format,
        "scorer": args.scorer,
        "aggregate": args.aggregate or "strategy default (step_beam/greedy_step: last; best_of_n: min)",
        "seeds": args.seeds,
        "datasets": {},
    }
    run_dirs: list[Path] = []
    t_all = time.perf_counter()
    for name in [d for d in args.datasets.split(",") if d]:
        out = run_folder(args.out, name, args.format, args.scorer)
        if args.aggregate:
            out = out.with_name(f"{out.name}-agg{args.aggregate}")
        cfg = EvalConfig(
            **dataset_options(name),
            limit=args.limit,
            strategies=strategies,
            format=args.format,
            ns=args.ns,
            stepwise_ns=args.stepwise_ns,
            seeds=args.seeds,
            scorer=args.scorer,
            aggregate=args.aggregate,
            max_tokens=MAX_TOKENS.get(args.format),
            seed=args.seed,
            batch_size=args.batch_size,
            out=str(out),
        )
        t0 = time.perf_counter()
        res = run_eval(cfg, engine=engine, progress=not args.no_progress)
        rows = [compact(r) for r in res.rows]
        run_dirs.append(res.out_dir)
        print(
            f"{out}: {len(res.rows)} rows, {res.new_records} new records, {time.perf_counter() - t0:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        report["datasets"][name] = {"run": str(res.out_dir), "rows": rows, "ratios": ratios(rows)}
    if run_dirs:
        path, _ = write_compare_report(run_dirs, Path(args.out) / "report.html")
        report["report"] = str(path)
    report["engine_calls_total"] = engine.n_calls
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
