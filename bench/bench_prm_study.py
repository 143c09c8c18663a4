"""Issue 14's study: a PRM trained on this CPU from the data engine's rollout labels vs voting.

Stages (each skips what is done, so the same command resumes; one heavy process at a time,
llama.cpp and torch on ONE thread each):

1. ``data``: distinct reasoning-gym chain_sum questions (2 one-digit terms) from a training seed
   (default 7), every question of the seed-1234 test set dropped;
2. ``labels``: ``slowthink annotate --mode rollout-labels`` on them (policy: the embedded SmolLM2,
   atomic format, k completions per step prefix) -> ``prm.jsonl``;
3. ``train``: ``slowthink train prm`` from SmolLM2-135M (the embedded GGUF) on ``prm.jsonl``;
4. ``sample``: ``slowthink eval`` on the 100 test problems (bench/_study.py): majority and
   best_of_n + symbolic checker, sampled ONCE at N=8 (N=1,2,4 subsampled, ``--seeds`` subsets);
5. ``prm``: best_of_n with the PRM (aggregate last / min / mean with select=score, and PRM-weighted
   voting) in one folder each,
   on the SAME samples (the sample folder's majority records are copied in: eval reuses them);
6. ``greedy``: greedy_step with the PRM at ``--greedy-ns`` (optional);
7. ``report``: one JSON (rows with Wilson 95% intervals, tokens incl. the PRM's forward passes,
   the share of the majority@8 -> any-right@8 gap each verifier closes) to ``--json``.

    PY="env PYTHONPATH=src OMP_NUM_THREADS=1 /work/main/.venv/bin/python"
    # what bench/RESULTS.md reports (in this order; each command resumes):
    $PY bench/bench_prm_study.py --stages sample                            # test samples, N=8
    $PY bench/bench_prm_study.py --stages data,labels --k 4                 # greedy chains, rollout labels
    $PY bench/bench_prm_study.py --stages chains,labels_sampled             # 2 sampled chains / question, k=2
    $PY bench/bench_prm_study.py --stages train --epochs 1 --lr 5e-5 --max-length 192
    $PY bench/bench_prm_study.py --stages prm,report                        # best_of_n with the PRM
    # a second epoch (continues the first PRM), its own JSON; then greedy_step with it
    $PY bench/bench_prm_study.py --stages sample,train,prm,report --train-tag v2 \
        --base-model /work/study_runs/prm-step_tag-v1 --epochs 1 --lr 5e-5 --max-length 192 \
        --json bench/results/prm_study_chain_sum100_v2.json
    $PY bench/bench_prm_study.py --stages greedy,report --greedy-ns 1,2 --train-tag v2 \
        --json bench/results/prm_study_chain_sum100_v2.json
    $PY bench/bench_prm_study.py --stages fit --train-tag v1 --json /tmp/fit.json   # PRM on its training rows
    $PY bench/bench_prm_study.py --stages data,labels --limit 8 --root /tmp/slice   # time a slice first

Run folders live under ``--root`` (default /work/study_runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _study import MAX_TOKENS, RG_CONFIG, dataset_options
from bench_scaling import compact
from slowthink.annotate import AnnotateConfig, run_annotate
from slowthink.benchmarks import load_benchmark
from slowthink.engines import RecordingEngine, load_engine
from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.metrics import token_total
from slowthink.formats.atomic import AtomicFormat
from slowthink.grading import grade
from slowthink.scorers.base import ScoreQuery
from slowthink.search.base import samples
from slowthink.stats import wilson
from slowthink.types import Problem, Trace

TEST_SEED = 1234
#: best_of_n variants with the PRM: (aggregate, select); weighted = PRM-weighted voting.
VARIANTS = (("last", "score"), ("min", "score"), ("mean", "score"), ("last", "weighted"))


#: The step-wise stages and the strategy each runs with the PRM.
STEPWISE = {"greedy": "greedy_step", "beam": "step_beam"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def auroc(pairs: list[tuple[float, bool]]) -> float | None:
    """P(score of a random positive > score of a random negative), ties half.

    >>> auroc([(0.9, True), (0.1, False), (0.5, True), (0.5, False)])
    0.875
    """
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    if not pos or not neg:
        return None
    return round(sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg)), 4)


class Study:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(args.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.questions = self.root / f"train_questions_seed{args.train_seed}.jsonl"
        self.labels = self.root / f"labels-seed{args.train_seed}-k{args.k}-t{args.rollout_tokens}"
        self.sampled = self.root / f"train_sampled_chains_seed{args.train_seed}_n{args.chains}.jsonl"
        self.labels_s = self.root / f"labels-sampled-seed{args.train_seed}-n{args.chains}-k{args.k_sampled}"
        self.prm = self.root / f"prm-{args.protocol}-{args.train_tag}"
        self.eval_root = self.root / "eval"
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = RecordingEngine(load_engine("llamacpp", n_threads=1))
        return self._engine

    # 1 -----------------------------------------------------------------
    def data(self) -> dict:
        test = {
            p.question
            for p in load_benchmark("reasoning-gym:chain_sum", size=100, seed=TEST_SEED, **RG_CONFIG).problems
        }
        train = load_benchmark(
            "reasoning-gym:chain_sum", size=self.args.pool, seed=self.args.train_seed, **RG_CONFIG
        ).problems
        kept: dict[str, object] = {}
        for p in train:
            if p.question not in test and p.question not in kept:
                kept[p.question] = p
        rows = list(kept.values())[: self.args.limit]
        if not self.questions.is_file():
            self.questions.write_text(
                "".join(
                    json.dumps({"id": p.id, "question": p.question, "answer": p.answer}) + "\n" for p in rows
                )
            )
        return {
            "train_seed": self.args.train_seed,
            "generated": len(train),
            "in_test_set": sum(p.question in test for p in train),
            "distinct_not_in_test": len(kept),
            "used": len(rows),
            "test_distinct": len(test),
        }

    # 2 -----------------------------------------------------------------
    def labels_stage(
        self,
        data: Path | None = None,
        out: Path | None = None,
        k: int | None = None,
        fields=None,
        source=None,
    ) -> dict:
        out, k = out or self.labels, k or self.args.k
        config = AnnotateConfig(
            mode="rollout-labels",
            data=str(data or self.questions),
            fields=fields,
            out=str(out),
            batch_size=self.args.annotate_batch,
            threads=1,
            mode_options={
                "k": k,
                "max_tokens": self.args.rollout_tokens,
                **({"source": source} if source else {}),
            },
        )
        t0 = time.perf_counter()
        r = run_annotate(config, policy=self.engine, progress=False)
        recs = [json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()]
        acc = [x for x in recs if x["status"] == "accepted"]
        soft = [s for x in acc for s in x["soft_labels"]]
        return {
            "folder": str(out),
            "k": k,
            "rollout_tokens": self.args.rollout_tokens,
            "items": len(recs),
            "accepted": len(acc),
            "steps": len(soft),
            "steps_per_chain": round(len(soft) / max(1, len(acc)), 2),
            "hard_positive_share": round(sum(s > 0 for s in soft) / max(1, len(soft)), 4),
            "soft_mean": round(sum(soft) / max(1, len(soft)), 4),
            "soft_histogram": {
                b: sum(1 for s in soft if f(s))
                for b, f in (
                    ("0", lambda s: s == 0),
                    ("(0,0.5)", lambda s: 0 < s < 0.5),
                    ("[0.5,1)", lambda s: 0.5 <= s < 1),
                    ("1", lambda s: s == 1),
                )
            },
            "chains_right": sum(bool(x["labels"][-1]) for x in acc),
            "tokens": r.summary["tokens"],
            "wall_s_this_call": round(time.perf_counter() - t0, 1),
            "wall_s_summary": r.summary.get("wall_time_s"),
        }

    # 2b ----------------------------------------------------------------
    def chains(self) -> dict:
        """Sampled chains on the training questions, drawn like the test paths (eval majority,
        atomic format, same sampling settings, seed = the training seed): the PRM must see the
        off-format and wrong paths that best_of_n has to rank, not only the policy's greedy chain."""
        cfg = EvalConfig(
            data=str(self.questions),
            fields="question=question,answer=answer",
            strategies=["majority"],
            format="atomic",
            ns=str(self.args.chains),
            seeds=1,
            max_tokens=MAX_TOKENS["atomic"],
            seed=self.args.train_seed,
            batch_size=8,
            out=str(self.eval_root / f"train-chains-seed{self.args.train_seed}"),
        )
        res = self.run(cfg)
        fmt = AtomicFormat()
        rows, seen, no_steps = [], set(), 0
        for line in (Path(res["folder"]) / "records.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["strategy"] != "majority" or not r.get("trace"):
                continue
            p = r["problem"]
            for j, node in enumerate(samples(Trace.from_dict(r["trace"]))):
                steps = [s.text for s in fmt.parse(node.text).steps]
                if not steps:
                    no_steps += 1
                    continue
                if (p["question"], tuple(steps)) in seen:
                    continue
                seen.add((p["question"], tuple(steps)))
                rows.append(
                    {
                        "id": f"{p['id']}-s{j}",
                        "question": p["question"],
                        "answer": p["answer"],
                        "steps": steps,
                    }
                )
        self.sampled.write_text("".join(json.dumps(x) + "\n" for x in rows))
        return {**res, "chains": len(rows), "samples_without_steps": no_steps}

    def labels_sampled(self) -> dict:
        return self.labels_stage(
            data=self.sampled,
            out=self.labels_s,
            k=self.args.k_sampled,
            fields="question=question,answer=answer,steps=steps",
            source="steps",
        )

    # 3 -----------------------------------------------------------------
    def train(self) -> dict:
        import torch

        from slowthink.train.prm import train_prm
        from slowthink.train.recipe import Recipe

        torch.set_num_threads(1)
        summary = self.prm / "train_summary.json"
        sets = {"greedy": self.labels, "sampled": self.labels_s}
        data = self.root / f"prm_train_{self.args.train_tag}.jsonl"
        if not summary.is_file():
            rows = [
                line
                for name in self.args.train_sets.split(",")
                for line in (sets[name] / "prm.jsonl").read_text().splitlines()
                if line.strip()
            ]
            data.write_text("\n".join(rows) + "\n")
            recipe = Recipe.load(
                self.args.recipe,
                protocol=self.args.protocol,
                epochs=self.args.epochs,
                learning_rate=self.args.lr,
                lora=self.args.lora,
                batch_size=self.args.train_batch,
                max_steps=self.args.max_steps,
                max_length=self.args.max_length,
            )
            train_prm(data, self.args.base_model, self.prm, recipe)
        return {
            "folder": str(self.prm),
            "data": str(data),
            "sets": self.args.train_sets,
            **json.loads(summary.read_text()),
        }

    # 4-6 ---------------------------------------------------------------
    def eval_config(self, folder: str, strategies: list[str], scorer: str, **kw) -> EvalConfig:
        return EvalConfig(
            **dataset_options("chain_sum"),
            limit=self.args.test_limit,
            strategies=strategies,
            format="atomic",
            ns=self.args.ns,
            stepwise_ns=kw.pop("stepwise_ns", "1"),
            seeds=self.args.seeds,
            scorer=scorer,
            max_tokens=MAX_TOKENS["atomic"],
            seed=TEST_SEED,
            batch_size=8,
            out=str(self.eval_root / folder),
            **kw,
        )

    def run(self, cfg: EvalConfig, scorer=None) -> dict:
        t0 = time.perf_counter()
        res = run_eval(cfg, engine=self.engine, scorer=scorer, progress=False, plots=False)
        log(f"{cfg.out}: {res.new_records} new records, {time.perf_counter() - t0:.0f}s")
        return {"folder": str(res.out_dir), "rows": [compact(r) for r in res.rows]}

    def sample(self) -> dict:
        return self.run(self.eval_config("chain_sum-atomic-symbolic", ["majority", "best_of_n"], "symbolic"))

    def prm_scorer(self):
        import torch

        from slowthink.scorers.prm import PRMScorer

        torch.set_num_threads(1)
        return PRMScorer(self.prm, device="cpu")

    def prm_stage(self) -> dict:
        src = self.eval_root / "chain_sum-atomic-symbolic" / "records.jsonl"
        majority = [x for x in src.read_text().splitlines() if json.loads(x)["strategy"] == "majority"]
        out = {}
        # ONE scorer for the three aggregations: they score the same paths (the scorer caches every
        # (problem, step prefix)), so only the first folder pays the PRM's forward passes; the report
        # charges that cost to every aggregation.
        scorer = self.prm_scorer()
        for agg, select in VARIANTS:
            name = agg if select == "score" else f"{agg}-{select}"
            folder = f"chain_sum-atomic-prm-{self.prm.name}-{name}"
            rec = self.eval_root / folder / "records.jsonl"
            if not rec.is_file():  # the same samples: eval's best_of_n reuses majority's traces
                rec.parent.mkdir(parents=True, exist_ok=True)
                rec.write_text("\n".join(majority) + "\n")
            cfg = self.eval_config(folder, ["best_of_n"], f"prm:{self.prm}", aggregate=agg, select=select)
            out[name] = self.run(cfg, scorer=scorer)
        return out

    def stepwise(self, strategy: str, suffix: str, ns: str, **options) -> dict:
        """``strategy`` (greedy_step or step_beam) with the PRM at ``ns`` candidates per step, in its
        own folder (best_of_n folders fix select)."""
        folder = f"chain_sum-atomic-prm-{self.prm.name}-{suffix}"
        cfg = self.eval_config(
            folder, [strategy], f"prm:{self.prm}", aggregate="last", stepwise_ns=ns, **options
        )
        return self.run(cfg, scorer=self.prm_scorer())

    def greedy(self) -> dict:
        return self.stepwise("greedy_step", "greedy", self.args.greedy_ns)

    def beam(self) -> dict:
        """step_beam with the PRM (beam width ``--beam-width``, ``--beam-ns`` candidates per beam
        and depth): the paper's step-level beam search with a learned verifier."""
        return self.stepwise("step_beam", "beam", self.args.beam_ns, beam=self.args.beam_width)

    def fit(self) -> dict:
        """The PRM on its own training rows: AUROC of its step scores against the hard step
        labels, all steps and last steps (does it fit what it was trained on?)."""
        scorer = self.prm_scorer()
        rows = [json.loads(x) for x in (self.root / f"prm_train_{self.args.train_tag}.jsonl").open()]
        queries = [
            ScoreQuery(Problem(f"train-{i}", r["prompt"]), r["completions"]) for i, r in enumerate(rows)
        ]
        results = scorer.score(queries)
        every, last = [], []
        for r, res in zip(rows, results):
            pairs = [(s, bool(y)) for s, y in zip(res.scores, r["labels"]) if s is not None]
            every += pairs
            last += pairs[-1:]
        return {"rows": len(rows), "auroc_all_steps": auroc(every), "auroc_last_steps": auroc(last)}

    # 7 -----------------------------------------------------------------
    @staticmethod
    def ranking(folder: str | Path) -> dict:
        """How well the run's path scores separate right from wrong answered samples of its
        best_of_n records at the largest N: pooled AUROC (ties count half) and the mean score of
        right and of wrong samples."""
        right, wrong = [], []
        recs = [json.loads(x) for x in (Path(folder) / "records.jsonl").read_text().splitlines() if x]
        recs = [r for r in recs if r["strategy"] == "best_of_n" and r.get("trace")]
        top = max((r["n"] for r in recs), default=0)
        for r in recs:
            if r["n"] != top:
                continue
            problem = Problem.from_dict(r["problem"])
            for node in samples(Trace.from_dict(r["trace"])):
                if node.answer is None or node.score is None:
                    continue
                (right if grade(node.answer, problem).correct else wrong).append(node.score)
        auc = auroc([(x, True) for x in right] + [(x, False) for x in wrong])
        return {
            "n": top,
            "answered_right": len(right),
            "answered_wrong": len(wrong),
            "auroc": auc,
            "mean_score_right": round(sum(right) / len(right), 4) if right else None,
            "mean_score_wrong": round(sum(wrong) / len(wrong), 4) if wrong else None,
        }

    def report(self, results: dict) -> dict:
        rows: dict[str, dict] = {}
        for name, part in (
            [("symbolic", results.get("sample"))]
            + [(f"prm-{a}", v) for a, v in (results.get("prm") or {}).items()]
            + [(f"prm-{stage}", results.get(stage)) for stage in STEPWISE]
        ):
            for r in (part or {}).get("rows", []):
                if name.startswith("prm") and r["strategy"] == "majority":
                    continue
                if (
                    name.removeprefix("prm-") in STEPWISE
                    and r["strategy"] != STEPWISE[name.removeprefix("prm-")]
                ):
                    continue
                label = r["strategy"] if r["strategy"] == "majority" else f"{r['strategy']}+{name}"
                rows[f"{label}@{r['n']}"] = r
        table = {}
        paid = {  # the PRM's forward passes, paid by the first aggregation (shared scorer cache)
            r["n"]: r.get("scorer_prompt_tokens") or 0
            for key, r in rows.items()
            if key.startswith("best_of_n+prm-") and (r.get("scorer_prompt_tokens") or 0) > 0
        }
        for key, r in rows.items():
            k = r["problems"]
            prm = r.get("scorer_prompt_tokens") or 0
            stepwise = r["strategy"] in STEPWISE.values()  # pays its own PRM passes
            extra = paid.get(r["n"], 0) if "+prm-" in key and not stepwise and not prm else 0
            table[key] = {
                "accuracy": r["accuracy"],
                "ci95": r.get("ci95") or list(wilson(r["accuracy"] * k, k)),
                "any_right": r.get("oracle"),
                "total_tokens_per_problem": round(token_total(r) + extra, 1),  # rows are per problem
                "prm_tokens_per_problem": round(prm + extra, 1),
            }
        gap = {}
        m8 = rows.get("majority@8")
        if m8 and m8.get("oracle") is not None:
            span = m8["oracle"] - m8["accuracy"]
            for key, r in rows.items():
                if key.endswith("@8") and key != "majority@8" and span > 0:
                    gap[key] = round((r["accuracy"] - m8["accuracy"]) / span, 3)
            gap["majority@8"] = m8["accuracy"]
            gap["any_right@8"] = m8["oracle"]
        folders = {"symbolic": (results.get("sample") or {}).get("folder")}
        folders.update({f"prm-{a}": v.get("folder") for a, v in (results.get("prm") or {}).items()})
        rank = {k: self.ranking(f) for k, f in folders.items() if f}
        return {"table": table, "gap_closed_share": gap, "ranking_of_answered_samples": rank}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", default="data,labels,train,sample,prm,report")
    ap.add_argument("--root", default="/work/study_runs")
    ap.add_argument("--train-seed", type=int, default=7)
    ap.add_argument("--pool", type=int, default=3000, help="questions generated before dedup")
    ap.add_argument("--limit", type=int, default=None, help="training questions used (default all)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--chains", type=int, default=2, help="sampled chains per training question")
    ap.add_argument("--k-sampled", type=int, default=2, help="rollouts per prefix of a sampled chain")
    ap.add_argument("--rollout-tokens", type=int, default=64)
    ap.add_argument("--annotate-batch", type=int, default=8)
    ap.add_argument("--protocol", default="step_tag")
    ap.add_argument("--recipe", default="recipes/train/cpu-prm-smollm2.yaml")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--lora", action="store_true", default=None)
    ap.add_argument("--train-batch", type=int, default=None)
    ap.add_argument("--train-sets", default="greedy,sampled", help="label folders trained on")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument(
        "--base-model",
        default=None,
        help="PRM base (default: the embedded SmolLM2 GGUF; a folder continues one)",
    )
    ap.add_argument("--train-tag", default="v1", help="names the PRM folder")
    ap.add_argument("--ns", default="1,2,4,8")
    ap.add_argument("--test-limit", type=int, default=100, help="test problems (smoke runs: fewer)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--greedy-ns", default="2")
    ap.add_argument("--beam-ns", default="2", help="step_beam candidates per beam and depth")
    ap.add_argument("--beam-width", type=int, default=2)
    ap.add_argument("--json", default="bench/results/prm_study_chain_sum100.json")
    args = ap.parse_args()

    study = Study(args)
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["args"] = vars(args)
    stages = [s for s in args.stages.split(",") if s]
    steps = {
        "data": study.data,
        "labels": study.labels_stage,
        "chains": study.chains,
        "labels_sampled": study.labels_sampled,
        "train": study.train,
        "sample": study.sample,
        "prm": study.prm_stage,
        "greedy": study.greedy,
        "beam": study.beam,
        "fit": study.fit,
    }
    for stage in stages:
        t0 = time.perf_counter()
        log(f"stage {stage}")
        if stage == "report":
            results["report"] = study.report(results)
        else:
            results[stage] = steps[stage]()
            results.setdefault("stage_wall_s", {})[stage] = round(time.perf_counter() - t0, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({s: results.get(s) for s in stages}, indent=2))


if __name__ == "__main__":
    main()
