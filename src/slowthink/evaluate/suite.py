"""Benchmark suites: ``slowthink eval --suite llava-cot --data-root DIR``.

A suite is a list of benchmarks, each found in ``DIR`` by its usual file name (VLMEvalKit's TSV
names), each run as a normal resumable eval run into ``OUT/<benchmark>`` with the same engine,
format, strategies and N, then scored with its official metric (:mod:`slowthink.evaluate.official`)
per run job (strategy at its generated N). It writes ``OUT/suite.md`` and ``OUT/suite.json`` (one
table: every benchmark, Overall and per category) and, per benchmark and job, a prediction file in
VLMEvalKit's layout (``OUT/predictions/slowthink-<job>_<DATASET>.xlsx``, ``.tsv`` without openpyxl)
so the numbers can be recomputed by VLMEvalKit's own scorers.

A benchmark whose file is missing gets one line naming the file and the folder, and the others
still run; with no file at all the suite stops with one error line. The policy engine is built
once, when the first benchmark has something to generate, and shared by every run (and by the
MM-Vet grader unless ``grade_judge`` names another engine spec).
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from slowthink.benchmarks import hallusionbench, mmbench, vlmeval
from slowthink.benchmarks.choices import LETTERS
from slowthink.evaluate.config import EvalConfig, Job, plan_jobs
from slowthink.evaluate.metrics import Grader
from slowthink.evaluate.official import METRICS, Item, Split
from slowthink.evaluate.records import RECORDS, RecordWriter, read_records, write_json
from slowthink.evaluate.runner import EvalResult, check_engine_spec, make_engine, run_eval
from slowthink.evaluate.subsample import derive
from slowthink.formats import Format, get_format
from slowthink.grading.mmvet import MMVetGrader, MMVetItem
from slowthink.grading.yesno import yes_no
from slowthink.jsonl import iter_jsonl
from slowthink.types import Problem, SlowthinkError, Trace

SUITE_MD = "suite.md"
SUITE_JSON = "suite.json"
PREDICTIONS = "predictions"
MMVET_GRADES = "mmvet_grades.jsonl"
#: Prediction-file columns, in order (those no row has are left out).
COLUMN_ORDER: tuple[str, ...] = (
    "index",
    "question",
    "hint",
    *LETTERS,
    "answer",
    "prediction",
    "category",
    "l2-category",
    "split",
)


@dataclass(frozen=True)
class SuiteEntry:
    """One benchmark of a suite: its table name, where its file may be (path relative to the data
    root, registered benchmark that reads it; the first is the one a missing-file line names),
    its official metric (a key of :data:`~slowthink.evaluate.official.METRICS`) and VLMEvalKit's
    name of the dataset (the suffix of its prediction file)."""

    name: str
    files: tuple[tuple[str, str], ...]
    metric: str
    vlmeval: str


def _files(benchmark: str, paths: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((p, benchmark) for p in paths)


SUITES: dict[str, tuple[SuiteEntry, ...]] = {
    # LLaVA-CoT (Xu et al.), Table 2: six benchmarks, all scored through VLMEvalKit.
    "llava-cot": (
        SuiteEntry("MMStar", _files("mmstar", ("MMStar.tsv", "mmstar/MMStar.tsv")), "accuracy", "MMStar"),
        SuiteEntry("MMBench", _files("mmbench", mmbench.DEFAULT_PATHS), "circular", "MMBench_DEV_EN"),
        SuiteEntry("MM-Vet", _files("mmvet", vlmeval.MMVET_PATHS), "mmvet", "MMVet"),
        SuiteEntry(
            "MathVista",
            (
                ("MathVista_MINI.tsv", "vlmeval"),
                ("mathvista/testmini.json", "mathvista"),
                ("MathVista/testmini.json", "mathvista"),
            ),
            "accuracy",
            "MathVista_MINI",
        ),
        SuiteEntry("AI2D", _files("ai2d", vlmeval.AI2D_PATHS), "accuracy", "AI2D_TEST"),
        SuiteEntry(
            "HallusionBench",
            _files("hallusionbench", hallusionbench.DEFAULT_PATHS),
            "hallusion",
            "HallusionBench",
        ),
    ),
}


def suite_names() -> list[str]:
    return sorted(SUITES)


def get_suite(name: str) -> tuple[SuiteEntry, ...]:
    if name not in SUITES:
        raise SlowthinkError(f"unknown suite '{name}': choose one of {', '.join(suite_names())}")
    return SUITES[name]


def find_file(entry: SuiteEntry, root: Path) -> tuple[Path, str] | None:
    """The first of the entry's files that exists under ``root``, with its benchmark."""
    for rel, benchmark in entry.files:
        if (root / rel).is_file():
            return root / rel, benchmark
    return None


def missing_line(entry: SuiteEntry, root: Path) -> str:
    """The one line for a benchmark whose file is not there."""
    first = entry.files[0][0]
    others = ", ".join(dict.fromkeys(rel for rel, _ in entry.files if rel != first))
    return f"{entry.name}: skipped, no data file: put {first} (VLMEvalKit's file) in {root}" + (
        f" (or as {others} there)" if others else ""
    )


# -- the engine, built once ------------------------------------------------------------------


class LazyEngine:
    """An engine built at its first use (``build()``), so a suite whose runs are all finished
    loads no model; attributes are the built engine's (``stats`` reads as absent until then)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._engine: Any = None

    @property
    def built(self) -> bool:
        return self._engine is not None

    def get(self) -> Any:
        if self._engine is None:
            self._engine = self._build()
        return self._engine

    def generate(self, requests):
        return self.get().generate(requests)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or (name == "stats" and self._engine is None):
            raise AttributeError(name)
        return getattr(self.get(), name)


# -- predictions in VLMEvalKit's layout --------------------------------------------------------


def prediction_text(rec: Mapping[str, Any] | None, fmt: Format) -> str:
    """The prediction of a record: the answer part of its chosen response as the format cuts it
    (the ``<CONCLUSION>`` of the stages format, the text from the last answer cue of the free
    format), when it yields the record's answer; else the record's extracted answer; else ``""``."""
    if rec is None:
        return ""
    answer = rec.get("answer")
    trace = rec.get("trace")
    if isinstance(trace, dict):
        try:
            return answer_part(
                Trace.from_dict(trace).response, Problem.from_dict(rec["problem"]), answer, fmt
            )
        except (KeyError, TypeError, ValueError):
            pass  # an unreadable old record: its answer below
    return "" if answer is None else str(answer)


def answer_part(response: str, problem: Problem, answer: str | None, fmt: Format) -> str:
    """The answer part of ``response`` as ``fmt`` cuts it when it yields ``answer``, else
    ``answer`` itself (``""`` for none)."""
    text = fmt.parse(response).answer_text
    if text and text.strip() and fmt.answer(response, problem) == answer:
        return text.strip()
    return "" if answer is None else str(answer)


def raw_question(p: Problem) -> str:
    """The file's question: without the ``Hint: ...`` line the loader put in front of it."""
    hint = p.meta.get("hint")
    head = f"Hint: {hint}\n"
    return p.question[len(head) :] if hint and p.question.startswith(head) else p.question


def prediction_row(p: Problem, prediction: str) -> dict[str, Any]:
    """One row of a VLMEvalKit prediction file: the columns its scorers read."""
    # a whole-number index stays a number (VLMEvalKit matches it against its TSV's int column)
    row: dict[str, Any] = {"index": int(p.id) if p.id.isdigit() else p.id, "question": raw_question(p)}
    if p.meta.get("hint"):
        row["hint"] = p.meta["hint"]
    for letter, text in zip(LETTERS, p.choices or []):
        row[letter] = text
    row["answer"] = p.meta.get("answer_letter") or p.answer or ""
    row["prediction"] = prediction
    for key, column in (("category", "category"), ("l2_category", "l2-category"), ("split", "split")):
        if p.meta.get(key) not in (None, "") and not (
            key == "category" and p.meta[key] == p.meta.get("benchmark")
        ):
            row[column] = p.meta[key]
    return row


def write_predictions(rows: Sequence[Mapping[str, Any]], stem: Path) -> Path:
    """``stem.xlsx`` (openpyxl installed) or ``stem.tsv``; columns in VLMEvalKit's order."""
    seen = {c for r in rows for c in r}
    columns = [c for c in COLUMN_ORDER if c in seen] + sorted(seen - set(COLUMN_ORDER))
    stem.parent.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("openpyxl") is not None:
        import openpyxl

        path = stem.with_suffix(".xlsx")
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(columns)
        for r in rows:
            ws.append([_cell(r.get(c)) for c in columns])
        wb.save(path)
        return path
    path = stem.with_suffix(".tsv")
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])
    return path


def _cell(value: Any) -> Any:
    return "" if value is None else value


# -- scoring ---------------------------------------------------------------------------------


def _meta(p: Problem, key: str) -> str | None:
    value = p.meta.get(key)
    return None if value in (None, "") else str(value)


def make_item(
    p: Problem, rec: Mapping[str, Any] | None, prediction: str, metric: str, score: float | None = None
) -> Item:
    """The :class:`Item` of one problem's record and prediction for ``metric`` (a missing or
    errored record is wrong)."""
    if metric == "hallusion":  # VLMEvalKit's Yes/No reading of the prediction, exact match with the gold
        correct = yes_no(prediction) == (p.answer or "")
    else:
        correct = bool(((rec or {}).get("grade") or {}).get("correct")) and not (rec or {}).get("error")
    category = _meta(p, "category")
    return Item(
        index=p.id,
        correct=correct,
        category=None if category == p.meta.get("benchmark") else category,
        l2_category=_meta(p, "l2_category"),
        g_index=_meta(p, "g_index"),
        set_id=_meta(p, "set_id"),
        figure_id=_meta(p, "figure_id"),
        question_id=_meta(p, "question_id"),
        score=score,
    )


@dataclass
class GraderRef:
    """The MM-Vet grader of a suite: ``name`` (its engine spec; grades are kept under it) and the
    grader, made by ``make`` at its first use."""

    name: str
    make: Callable[[], MMVetGrader]
    _grader: MMVetGrader | None = None

    def get(self) -> MMVetGrader:
        if self._grader is None:
            self._grader = self.make()
        return self._grader


def grade_mmvet(
    out: Path, job: Job, items: Sequence[tuple[Problem, str]], grader: GraderRef, key: str | None = None
) -> dict[str, dict[str, Any]]:
    """MM-Vet grades of a job's predictions by problem id: read from ``out/mmvet_grades.jsonl``
    when the same grader graded that prediction before, else graded now (one batch) and appended
    there. ``key`` replaces the job's key (a derived N's subset keeps its grades apart)."""
    key = job.key if key is None else key
    path = out / MMVET_GRADES
    known: dict[tuple[str, str, str], dict[str, Any]] = {}
    if path.is_file():
        for _, rec in iter_jsonl(path):
            if rec is not None and {"id", "strategy", "key"} <= set(rec):
                known[(str(rec["id"]), str(rec["strategy"]), str(rec["key"]))] = rec
    grades: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Problem, str]] = []
    for p, pred in items:
        rec = known.get((p.id, job.strategy, key))
        if rec is not None and rec.get("prediction") == pred and rec.get("grader") == grader.name:
            grades[p.id] = rec
        else:
            todo.append((p, pred))
    if todo:
        new = grader.get().grade([MMVetItem(p.question, p.answer or "", pred) for p, pred in todo])
        recs = [
            {
                "id": p.id,
                "strategy": job.strategy,
                "key": key,
                "prediction": pred,
                "grader": grader.name,
                "score": g.score,
                "tries": g.tries,
                "parsed": g.parsed,
                "log": g.log,
            }
            for (p, pred), g in zip(todo, new)
        ]
        with RecordWriter(path) as w:
            w.write(recs)
        grades.update({r["id"]: r for r in recs})
    return grades


@dataclass
class JobScore:
    """A job's official scores and its prediction file; for a smaller N derived from a path-wise
    job (``n`` < ``job.n``), the mean over ``subsets`` of the official scores of each subset's
    predictions, and the first subset's prediction file (the others beside it, ``-s1``, ...)."""

    job: Job
    splits: list[Split]
    predictions: Path
    notes: list[str] = field(default_factory=list)
    n: int | None = None
    subsets: int | None = None

    @property
    def derived(self) -> bool:
        return self.n is not None and self.job.n is not None and self.n < self.job.n

    @property
    def label(self) -> str:
        if self.derived:
            return f"{self.job.strategy} n={self.n} (from n={self.job.n}, mean of {self.subsets} subsets)"
        return self.job.label


@dataclass
class BenchmarkRun:
    entry: SuiteEntry
    config: EvalConfig
    result: EvalResult
    jobs: list[JobScore]


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "-", label).replace("=", "")


def _score_items(
    entry: SuiteEntry,
    result: EvalResult,
    job: Job,
    pairs: Sequence[tuple[Problem, dict[str, Any] | None]],
    preds: Sequence[str],
    correct: Sequence[bool] | None,
    grader: GraderRef,
    key: str | None = None,
) -> tuple[list[Item], list[str]]:
    """The metric's items of one prediction set (``correct``: the graded answers when they are not
    the records' own, i.e. for a derived subset)."""
    notes = []
    mmvet: dict[str, dict[str, Any]] = {}
    if entry.metric == "mmvet":
        mmvet = grade_mmvet(
            result.out_dir, job, [(p, pred) for (p, _), pred in zip(pairs, preds)], grader, key=key
        )
        failed = sum(not g.get("parsed", True) for g in mmvet.values())
        if failed:
            notes.append(
                f"{failed} grader repl{'ies' if failed != 1 else 'y'} unparseable after retries: scored 0"
            )
    items = [
        make_item(p, r, pred, entry.metric, (mmvet.get(p.id) or {}).get("score"))
        for (p, r), pred in zip(pairs, preds)
    ]
    if correct is not None and entry.metric not in ("hallusion", "mmvet"):
        items = [replace(it, correct=bool(c)) for it, c in zip(items, correct)]
    return items, notes


def _mean_splits(runs: Sequence[list[Split]]) -> list[Split]:
    """Split by split, the mean of each value over several subsets' tables (same rows in each)."""
    first = runs[0]
    out = []
    for i, sp in enumerate(first):
        rows = [r[i] for r in runs]
        out.append(
            Split(sp.split, sp.by, sp.n, {k: sum(r.values[k] for r in rows) / len(rows) for k in sp.values})
        )
    return out


def derived_predictions(
    pairs: Sequence[tuple[Problem, dict[str, Any] | None]], k: int, seeds: int, fmt: Format, grader: Grader
) -> list[tuple[list[str], list[bool]]]:
    """Per subset, every problem's prediction and grade at N = ``k``, from the selection rule re-run
    on ``k`` of the recorded samples (:func:`~slowthink.evaluate.subsample.derive`, the subsets the
    run's own metrics use). Problems with fewer subsets (a smaller sample pool) repeat theirs."""
    per_problem: list[list[tuple[str, bool]]] = []
    for p, rec in pairs:
        trace_d = (rec or {}).get("trace")
        if not isinstance(trace_d, dict) or not (rec or {}).get("pathwise"):
            per_problem.append(
                [(prediction_text(rec, fmt), bool(((rec or {}).get("grade") or {}).get("correct")))]
            )
            continue
        trace = Trace.from_dict(trace_d)
        by_id = {n.id: n for n in trace.nodes}
        subs = []
        for d in derive(trace, p, k, seeds):
            if d.answer is None or d.winner is None:
                subs.append(("", False))
                continue
            subs.append((answer_part(by_id[d.winner].text, p, d.answer, fmt), bool(grader(d.answer, p))))
        per_problem.append(subs or [("", False)])
    count = max(len(x) for x in per_problem) if per_problem else 0
    return [
        ([x[s % len(x)][0] for x in per_problem], [x[s % len(x)][1] for x in per_problem])
        for s in range(count)
    ]


def score_run(
    entry: SuiteEntry, config: EvalConfig, result: EvalResult, out: Path, grader: GraderRef
) -> list[JobScore]:
    """Every job of a finished run scored with the entry's official metric, and its prediction file;
    a path-wise job also at each smaller N it reports (derived from its samples, as the run's own
    metrics derive them: the mean over the subsets of the official scores)."""
    records, _ = read_records(result.out_dir / RECORDS)
    metric = METRICS[entry.metric]
    fmt = get_format(config.format)
    rule_grader = Grader()
    scores = []
    for job in plan_jobs(config):
        pairs: list[tuple[Problem, dict[str, Any] | None]] = []
        for pid in result.problem_ids:
            rec = records.get((pid, job.strategy, job.key))
            if rec is not None and isinstance(rec.get("problem"), dict):
                pairs.append((Problem.from_dict(rec["problem"]), rec))
        missing = []
        if len(pairs) < len(result.problem_ids):
            missing.append(f"{len(result.problem_ids) - len(pairs)} problem(s) without a record: left out")
        preds = [prediction_text(r, fmt) for _, r in pairs]
        items, notes = _score_items(entry, result, job, pairs, preds, None, grader)
        rows = [prediction_row(p, pred) for (p, _), pred in zip(pairs, preds)]
        path = write_predictions(
            rows, out / PREDICTIONS / f"slowthink-{_file_name(job.label)}_{entry.vlmeval}"
        )
        scores.append(JobScore(job, metric.splits(items), path, notes + missing))
        smaller = [
            k for k in job.report_ns if job.pathwise and k is not None and job.n is not None and k < job.n
        ]
        for k in smaller:
            sets = derived_predictions(pairs, k, config.seeds, fmt, rule_grader)
            tables, sub_notes, first_path = [], [], None
            for s, (sub_preds, correct) in enumerate(sets):
                sub_items, n_ = _score_items(
                    entry, result, job, pairs, sub_preds, correct, grader, key=f"{job.key}@n={k}#{s}"
                )
                tables.append(metric.splits(sub_items))
                sub_notes += [f"subset {s}: {x}" for x in n_]
                rows = [prediction_row(p, pred) for (p, _), pred in zip(pairs, sub_preds)]
                stem = f"slowthink-{_file_name(f'{job.strategy} n={k}')}-s{s}_{entry.vlmeval}"
                written = write_predictions(rows, out / PREDICTIONS / stem)
                first_path = first_path or written
            if tables and first_path is not None:
                scores.append(
                    JobScore(
                        job, _mean_splits(tables), first_path, sub_notes + missing, n=k, subsets=len(tables)
                    )
                )
    return scores


# -- the suite -------------------------------------------------------------------------------


@dataclass
class SuiteResult:
    name: str
    out: Path
    runs: list[BenchmarkRun]
    skipped: list[str]
    files: list[Path]
    table: dict[str, Any]


def run_suite(
    name: str,
    data_root: str | Path,
    base: Mapping[str, Any],
    out: str | Path,
    *,
    engine: Any = None,
    on_line: Callable[[str], None] | None = None,
    **run_options: Any,
) -> SuiteResult:
    """Run (or resume) every benchmark of suite ``name`` found in ``data_root``.

    ``base`` holds the :class:`EvalConfig` fields every run shares (not ``benchmark``, ``data``,
    ``out``); ``grade_judge`` there also names the MM-Vet grader (``None``/``policy``: the policy
    engine). ``engine`` replaces the policy engine built from the specs (tests, notebooks);
    ``on_line`` gets each skipped benchmark's line as it happens; ``run_options`` go to
    :func:`~slowthink.evaluate.runner.run_eval`.
    """
    entries = get_suite(name)
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise SlowthinkError(
            f"--data-root {root} is not a folder: pass the folder holding the benchmark files"
        )
    for key in ("benchmark", "data", "out"):
        if base.get(key) is not None:
            raise SlowthinkError(f"--suite sets {key} itself: leave out --{key}")
    out = Path(out)
    found = {e.name: find_file(e, root) for e in entries}
    if not any(found.values()):
        wanted = "; ".join(f"{e.name}: {e.files[0][0]}" for e in entries)
        raise SlowthinkError(
            f"suite {name}: no benchmark file in {root}; put VLMEvalKit's files there ({wanted})"
        )
    shared = {k: v for k, v in base.items() if k not in ("benchmark", "data", "out")}
    configs: dict[str, EvalConfig] = {}
    for e in entries:
        hit = found[e.name]
        if hit is None:
            continue
        path, benchmark = hit
        fields = {**shared, "benchmark": benchmark, "data": str(path), "out": str(out / e.name)}
        if e.metric in ("mmvet", "hallusion"):  # scored by MM-Vet's grader / the Yes-No reading below
            fields["grade_judge"] = None
        configs[e.name] = EvalConfig(**fields)
        plan_jobs(configs[e.name])  # every flag checked before any run
    first = next(iter(configs.values()))
    judge_spec = base.get("grade_judge")
    if engine is None and first.ray is None:
        check_engine_spec(first.engine_spec)
        engine = LazyEngine(lambda: make_engine(first))
    if judge_spec and judge_spec != "policy":
        check_engine_spec(judge_spec, what="--grade-judge")
        judge_engine: Any = LazyEngine(
            lambda: make_engine(replace(first, engine=judge_spec, model=None, engine_options={}))
        )
        grader_name = judge_spec
    else:
        judge_engine = engine if engine is not None else LazyEngine(lambda: make_engine(first))
        grader_name = f"policy:{first.engine_spec}"
    grader = GraderRef(grader_name, lambda: MMVetGrader(judge_engine))

    runs: list[BenchmarkRun] = []
    skipped: list[str] = []
    for e in entries:
        line = None
        if e.name not in configs:
            line = missing_line(e, root)
        else:
            cfg = configs[e.name]
            try:
                result = run_eval(cfg, engine=engine if cfg.ray is None else None, **run_options)
                runs.append(BenchmarkRun(e, cfg, result, score_run(e, cfg, result, out, grader)))
            except SlowthinkError as err:
                line = f"{e.name}: failed, {err}"
        if line is not None:
            skipped.append(line)
            if on_line is not None:
                on_line(line)
    if not runs:
        failed = "; ".join(line for line in skipped if ": failed, " in line)
        raise SlowthinkError(f"suite {name}: no benchmark ran ({failed})")
    table = suite_table(name, root, first, runs, skipped, grader_name)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SUITE_JSON, table)
    (out / SUITE_MD).write_text(suite_markdown(table), encoding="utf-8")
    files = [out / SUITE_MD, out / SUITE_JSON] + [j.predictions for r in runs for j in r.jobs]
    return SuiteResult(name, out, runs, skipped, files, table)


def suite_table(
    name: str,
    root: Path,
    config: EvalConfig,
    runs: Sequence[BenchmarkRun],
    skipped: Sequence[str],
    grader: str,
) -> dict[str, Any]:
    """What ``suite.json`` holds: the settings, and per benchmark and job the official splits."""
    return {
        "suite": name,
        "data_root": str(root),
        "engine": config.engine_spec,
        "format": config.format,
        "strategies": list(config.strategies),
        "mmvet_grader": grader,
        "skipped": list(skipped),
        "benchmarks": [
            {
                "name": r.entry.name,
                "benchmark": r.config.benchmark,
                "file": r.config.data,
                "run": str(r.result.out_dir),
                "load": r.result.metrics.get("load", {}).get("summary"),
                "metric": r.entry.metric,
                "metric_label": METRICS[r.entry.metric].label,
                "headline": METRICS[r.entry.metric].headline,
                "jobs": [
                    {
                        "strategy": j.job.strategy,
                        "key": j.job.key,
                        "n": j.n if j.derived else j.job.n,
                        "derived_from": j.job.n if j.derived else None,
                        "subsets": j.subsets if j.derived else None,
                        "label": j.label,
                        "predictions": str(j.predictions),
                        "notes": j.notes,
                        "splits": [s.to_dict() for s in j.splits],
                    }
                    for j in r.jobs
                ],
            }
            for r in runs
        ],
    }


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def suite_markdown(table: Mapping[str, Any]) -> str:
    """``suite.md``: a summary (one line per benchmark and job: the headline metric, Overall),
    then each benchmark's splits (Overall and per category)."""
    lines = [
        f"# Suite {table['suite']}",
        "",
        f"engine `{table['engine']}` · format `{table['format']}` · MM-Vet grader `{table['mmvet_grader']}` · "
        f"data {table['data_root']}",
        "",
        "| benchmark | job | metric | Overall | n |",
        "|---|---|---|---:|---:|",
    ]
    for b in table["benchmarks"]:
        for j in b["jobs"]:
            overall = j["splits"][0]
            lines.append(
                f"| {b['name']} | {j['label']} | {b['headline']} | {_fmt(overall['values'][b['headline']])} | "
                f"{overall['n']} |"
            )
    for line in table["skipped"]:
        lines.append(f"\n{line}")
    for b in table["benchmarks"]:
        for j in b["jobs"]:
            keys = list(j["splits"][0]["values"])
            lines += [
                "",
                f"## {b['name']} · {j['label']} · {b['metric_label']}",
                "",
                f"{b['load']}",
                "",
                "| split | by | n | " + " | ".join(keys) + " |",
                "|---|---|---:|" + "---:|" * len(keys),
            ]
            for s in j["splits"]:
                cells = " | ".join(_fmt(s["values"][k]) for k in keys)
                lines.append(f"| {s['split']} | {s['by']} | {s['n']} | {cells} |")
            lines += [f"\n{note}" for note in j["notes"]]
            lines.append(f"\npredictions: `{j['predictions']}`")
    return "\n".join(lines) + "\n"
