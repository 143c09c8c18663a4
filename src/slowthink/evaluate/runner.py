"""The resumable evaluation loop behind ``slowthink eval``.

::

    from slowthink.evaluate import EvalConfig, run_eval

    result = run_eval(EvalConfig(benchmark="gsm8k", limit=20, strategies=["majority"], ns=[1, 2, 4, 8]))
    result.rows          # one metrics row per (strategy, N)

For each job (see :func:`~slowthink.evaluate.config.plan_jobs`) the problems without a finished
record go through :func:`slowthink.search.solve` ``batch_size`` at a time (so a batch makes one
engine call per search depth); each finished batch is graded and appended to ``records.jsonl``
(flushed and fsynced) before the next starts. Re-running the same command skips finished
``(problem id, strategy, config key)`` records. A problem whose solve raised or whose trace holds
an engine error gets a record with ``error`` (it counts as wrong) and the run goes on; a batch that
raised is retried problem by problem to find the one that raised.

Errors are retried on resume: re-running the same command re-runs errored records until a problem
has had ``max_attempts`` attempts (each record keeps its ``attempt`` number; the new record
supersedes the old line), so a transient outage is finished by running the command again;
``retry_errors=False`` (``--no-retry-errors``) keeps them. When every problem of the first batch of
an invocation fails (and at least one of them had not failed before) the run stops with one error
line and records nothing for that batch: an unreachable server or a wrong model name is reported at
once instead of as a folder of error records.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slowthink.benchmarks import load_benchmark
from slowthink.distributed import open_pool
from slowthink.engines import EngineSpec, load_engine
from slowthink.evaluate.config import EvalConfig, Job, plan_jobs
from slowthink.evaluate.metrics import Grader, grade_dict, job_rows
from slowthink.evaluate.plots import plot_scaling, series
from slowthink.evaluate.records import (
    CONFIG,
    METRICS,
    RECORD_VERSION,
    RECORDS,
    REPORT,
    VIEW,
    RecordWriter,
    read_json,
    read_records,
    write_json,
)
from slowthink.evaluate.report import write_run_report
from slowthink.formats import get_format
from slowthink.grading import AnswerJudge, number_rules_summary
from slowthink.inspect import record_views, write_page
from slowthink.options import PY_PREFIX, load_py_object
from slowthink.progress import ProgressBars
from slowthink.scorers import load_scorer
from slowthink.search import STRATEGIES, check_engine_fits, make_config, require, solve
from slowthink.types import Problem, SlowthinkError, Trace

if TYPE_CHECKING:
    from slowthink.benchmarks import LoadResult
    from slowthink.formats import Format


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    new_records: int = 0
    resumed_records: int = 0
    errors: int = 0
    files: list[Path] = field(default_factory=list)
    error_summary: dict[str, Any] = field(default_factory=dict)
    """Errored records of the whole run folder after this invocation: ``records`` (how many),
    ``retryable`` (fewer than ``max_attempts`` attempts: the same command re-runs them),
    ``exhausted``, ``max_attempts``, ``retry_errors`` and ``example`` (one error text)."""
    problem_ids: list[str] = field(default_factory=list)
    """The ids of the problems this invocation loaded, in file order (what its rows count)."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.metrics["rows"]


def make_engine(config: EvalConfig):
    """The engine of ``config.engine_spec`` with ``config.engine_options`` (and ``threads``)."""
    if config.engine.startswith(PY_PREFIX):
        return load_py_object(config.engine, **config.engine_options)
    options = dict(config.engine_options)
    if config.threads:
        options.setdefault("n_threads", config.threads)
    return load_engine(config.engine_spec, **options)


def make_scorer(config: EvalConfig, engine):
    if config.scorer is None:
        return None
    if config.scorer.startswith(PY_PREFIX):
        return load_py_object(config.scorer)
    return load_scorer(config.scorer, engine=engine)


def _path_like(target: str) -> bool:
    return target.startswith(("/", "./", "../", "~")) or target.endswith(".gguf")


def check_engine_spec(spec: str, what: str = "--model") -> None:
    """Fail at once, before the run folder is touched, on an engine spec that cannot load: an
    unknown engine kind, or a local model path (``llamacpp:PATH``, ``hf:/dir``, ``vllm:./dir``)
    that does not exist. Hub ids and server URLs are left to the engine."""
    if spec.startswith(PY_PREFIX):
        return
    s = EngineSpec.parse(spec)
    if s.kind == "openai" or not s.target:
        return
    if s.kind == "llamacpp" or _path_like(s.target):
        path = Path(s.target).expanduser()
        if not (path.is_file() if s.kind == "llamacpp" else path.exists()):
            raise SlowthinkError(
                f"model not found: {s.target} (engine '{s.kind}'): pass {what} with an existing path"
            )


def preflight(jobs: Sequence[Job], pending: dict[Job, list[Problem]], engine, scorer) -> None:
    """What every problem would hit stops the run before any generation (one SlowthinkError line):
    a strategy without the scorer it needs, problems with images on a text-only engine."""
    live = [j for j in jobs if pending[j]]
    check_scorer(live, scorer)
    todo = {p.id: p for j in live for p in pending[j]}
    check_engine_fits(list(todo.values()), engine)


def check_scorer(jobs: Sequence[Job], scorer) -> None:
    """Fail before any generation when a strategy needs what the scorer cannot do
    (:func:`slowthink.search.require`, as ``solve`` checks it)."""
    for job in jobs:
        require(job.strategy, make_config(job.strategy, **dict(job.overrides)), scorer)


def load_problems(config: EvalConfig):
    """The benchmark's :class:`~slowthink.benchmarks.LoadResult` (``--data`` alone: the generic loader)."""
    opts = dict(config.benchmark_options)
    if config.fields is not None:
        opts["fields"] = config.fields
    result = load_benchmark(config.benchmark or "jsonl", config.data, limit=config.limit, **opts)
    if config.ignore_images:
        for p in result.problems:
            p.images = []
    return result


def _canonical(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def check_out_dir(out: Path) -> None:
    """Create the run folder, or one clear error line when it cannot hold a run: ``--out`` names a
    file, a folder above it is a file, or one of the run's files (records.jsonl, ...) is a folder."""
    if out.exists() and not out.is_dir():
        raise SlowthinkError(f"--out {out} is a file, not a run folder: pass a folder path (e.g. runs/NAME)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SlowthinkError(
            f"cannot create the run folder {out} ({e.strerror or e}): pass a writable --out folder"
        ) from None
    for name in (RECORDS, CONFIG, METRICS, REPORT, VIEW):
        if (out / name).is_dir():
            raise SlowthinkError(
                f"{out / name} is a folder, but the run keeps a file there: move it away or pass another --out"
            )
    if not os.access(out, os.W_OK):
        raise SlowthinkError(
            f"the run folder {out} is not writable: fix its permissions or pass another --out"
        )


def prepare_out(config: EvalConfig, jobs: Sequence[Job], *, force: bool = False) -> Path:
    """Create the run folder; refuse (or with ``force`` set aside the old records) on a settings mismatch."""
    out = Path(config.out)
    check_out_dir(out)
    cfg_path = out / CONFIG
    identity = _canonical(config.identity())
    rec = out / RECORDS
    if cfg_path.is_file() and rec.is_file() and rec.stat().st_size > 0:  # an empty folder takes new settings
        old = EvalConfig.stored_identity(read_json(cfg_path, "run config").get("identity", {}))
        diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in identity.items() if old.get(k) != v]
        if diffs and not force:
            raise SlowthinkError(
                f"{out} holds a run with other settings ({'; '.join(diffs)}): use a new --out, "
                "or --force to set its records aside and start over"
            )
        if diffs:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            shutil.move(rec, out / f"records.{stamp}.bak.jsonl")
    write_json(
        cfg_path,
        {
            "identity": identity,
            "config": _canonical(config.to_dict()),
            "jobs": [
                {
                    "strategy": j.strategy,
                    "key": j.key,
                    "n": j.n,
                    "report_ns": list(j.report_ns),
                    "pathwise": j.pathwise,
                    "options": _canonical(j.options()),
                }
                for j in jobs
            ],
            "updated": _now(),
        },
    )
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:1000]


def stale_records(
    records: dict[tuple[str, str, str], dict[str, Any]],
    jobs: Sequence[Job],
    seed: int,
    out: Path,
    *,
    force: bool = False,
) -> set[tuple[str, str, str]]:
    """Keys of records made with other strategy settings than this run's jobs would use now.

    The run identity stores options as given (``None`` = the strategy's default); when a default
    changes between slowthink versions (e.g. step search's ``aggregate`` ``min`` -> ``last``), old
    records would silently mix with new ones. Each record's trace keeps its resolved settings, so
    they are compared here: a mismatch is an error naming the option and the fix; with ``force``
    those records are re-run (the new record supersedes the old line). To reproduce the old
    behaviour, start a new run folder with the option given explicitly (``--aggregate min``).
    """
    by_job = {(job.strategy, job.key): job for job in jobs}
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    stale: dict[tuple[str, str, str], str] = {}
    for key, rec in records.items():
        job = by_job.get(key[1:])
        if job is None or not isinstance(rec.get("trace"), dict):
            continue
        if key[1:] not in wanted:
            wanted[key[1:]] = make_config(job.strategy, seed=seed, **job.options()).to_dict()
        want, have = wanted[key[1:]], rec["trace"].get("config") or {}
        diff = [
            f"{k}={have[k]!r} (now {want[k]!r})" for k in sorted(want) if k in have and have[k] != want[k]
        ]
        if diff:
            stale[key] = f"{job.label}: {', '.join(diff)}"
    if stale and not force:
        example = next(iter(stale.values()))
        raise SlowthinkError(
            f"{out}: {len(stale)} record(s) were made with other strategy settings than this run would use "
            f"({example}; a default changed since they were made): use a new --out, "
            "or --force to re-run those records with today's settings"
        )
    return set(stale)


def solve_batch(
    batch: Sequence[Problem], job: Job, engine, fmt, scorer, seed: int, reuse: dict[str, Trace] | None = None
) -> list[tuple[Problem, Trace | None, str | None]]:
    """Solve a batch; if the call raises, retry problem by problem to isolate the one(s) that raise."""
    try:
        traces = solve(
            batch, engine, fmt, job.strategy, scorer=scorer, seed=seed, reuse=reuse, **job.options()
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        if len(batch) == 1:
            return [(batch[0], None, _error_text(e))]
        return [r for p in batch for r in solve_batch([p], job, engine, fmt, scorer, seed, reuse)]
    by_id = {t.problem_id: t for t in traces}
    out = []
    for p in batch:
        t = by_id.get(p.id)
        if t is None:
            out.append((p, None, f"strategy {job.strategy} returned no trace for problem {p.id}"))
        else:
            out.append((p, t, t.error))
    return out


def pathwise_index(
    records: dict[tuple[str, str, str], dict[str, Any]],
) -> dict[str, list[tuple[str, str, str]]]:
    """Problem id -> keys of its path-wise records (what :func:`reusable_samples` looks through)."""
    index: dict[str, list[tuple[str, str, str]]] = {}
    for key, r in records.items():
        if r.get("pathwise"):
            index.setdefault(key[0], []).append(key)
    return index


def reusable_samples(
    job: Job,
    batch: Sequence[Problem],
    records: dict[tuple[str, str, str], dict[str, Any]],
    index: dict[str, list[tuple[str, str, str]]] | None = None,
) -> dict[str, Trace] | None:
    """For a path-wise job: problem id -> a finished path-wise trace of another job of this run
    with at least ``job.n`` samples, whose samples the job can take instead of generating them.

    Every job of a run folder shares the format, engine, sampling settings and base seed (the run's
    identity), and path-wise strategies draw their samples with the same seeded request, so
    majority and best_of_n at the same N would generate the same samples: they are made once.
    """
    if not job.pathwise:
        return None
    index = pathwise_index(records) if index is None else index
    out: dict[str, Trace] = {}
    for p in batch:
        best = None
        for k in index.get(p.id, ()):
            r = records[k]
            if k[1:] == (job.strategy, job.key):
                continue
            if r.get("error") or not r.get("trace") or (r.get("n") or 0) < (job.n or 0):
                continue
            if best is None or r["n"] < best["n"]:
                best = r
        if best is not None:
            try:
                out[p.id] = Trace.from_dict(best["trace"])
            except (TypeError, KeyError, ValueError):
                continue  # an unreadable old record: generate instead
    return out or None


def make_record(
    problem: Problem, job: Job, trace: Trace | None, error: str | None, seed: int, attempt: int = 1
) -> dict[str, Any]:
    answer = trace.answer if trace is not None else None
    return {
        "v": RECORD_VERSION,
        "id": problem.id,
        "strategy": job.strategy,
        "key": job.key,
        "n": job.n,
        "pathwise": job.pathwise,
        "options": {**job.options(), "seed": seed},
        "problem": problem.to_dict(),
        "trace": trace.to_dict() if trace is not None else None,
        "answer": answer,
        "grade": grade_dict(answer, problem) if trace is not None else None,
        "compute": asdict(trace.compute) if trace is not None else None,
        "error": error,
        "attempt": attempt,
        "time": _now(),
    }


def attempts_of(rec: dict[str, Any] | None) -> int:
    """Attempts a record stands for (records written before attempts were kept count as one)."""
    if rec is None:
        return 0
    try:
        return max(1, int(rec.get("attempt") or 1))
    except (TypeError, ValueError):
        return 1


def summarize_errors(
    records: dict[tuple[str, str, str], dict[str, Any]],
    jobs: Sequence[Job],
    problem_ids: Sequence[str],
    max_attempts: int,
    retry_errors: bool,
) -> dict[str, Any]:
    """How many of the run's records hold an error, and how many the same command would retry."""
    errored = [
        r
        for job in jobs
        for pid in problem_ids
        if (r := records.get((pid, job.strategy, job.key))) is not None and r.get("error")
    ]
    exhausted = sum(attempts_of(r) >= max_attempts for r in errored)
    return {
        "records": len(errored),
        "retryable": (len(errored) - exhausted) if retry_errors else 0,
        "exhausted": exhausted,
        "max_attempts": max_attempts,
        "retry_errors": retry_errors,
        "example": str(errored[0]["error"])[:300] if errored else None,
    }


ACC_FIELD = ("acc {task.fields[acc]}",)
"""The progress bar's column after done/total: the job's running accuracy."""


def _acc_text(correct: int, n: int) -> str:
    return f"{correct / n:.3f} ({correct}/{n})" if n else "-"


RecordKey = tuple[str, str, str]
"""A record's key: (problem id, strategy, job key)."""


@dataclass
class RunState:
    """A run folder as :func:`resume_run` found it: the jobs, format and problems of the run, its
    records, and what is left to do."""

    jobs: list[Job]
    fmt: Format
    load: LoadResult
    out: Path
    records: dict[RecordKey, dict[str, Any]]
    unreadable_lines: int
    done: set[RecordKey]
    """Records kept as they are (finished, or errored past retrying)."""
    pending: dict[Job, list[Problem]]
    """Problems each job still has to solve."""

    @property
    def problems(self) -> list[Problem]:
        return self.load.problems

    @property
    def problem_ids(self) -> list[str]:
        return [p.id for p in self.problems]

    @property
    def resumed(self) -> int:
        return sum((p.id, j.strategy, j.key) in self.done for j in self.jobs for p in self.problems)

    @property
    def todo(self) -> int:
        return sum(len(v) for v in self.pending.values())


@dataclass
class Ran:
    """What :func:`run_pending` did: records written, errors among them, and the engine it used
    (the one passed in, or the one it built; None when nothing was pending and none was given)."""

    engine: Any
    new: int = 0
    errors: int = 0


def run_eval(
    config: EvalConfig,
    *,
    force: bool = False,
    retry_errors: bool = True,
    max_attempts: int = 3,
    progress: bool = True,
    plots: bool = True,
    console=None,
    engine=None,
    scorer=None,
    on_batch: Callable[[Job, list[dict[str, Any]]], None] | None = None,
) -> EvalResult:
    """Run (or resume) an evaluation; write records, config.json, metrics.json, plots and report.html.

    ``engine`` / ``scorer`` objects may be passed in (tests, notebooks); otherwise they are built
    from the config's specs, and only when some problem still needs solving. Errored records are
    re-run while ``retry_errors`` and a problem has had fewer than ``max_attempts`` attempts.

    The steps: :func:`resume_run` (plan, folder, records, what is pending), :func:`run_pending`
    (the batch loop), :func:`summarize_run` (grading, rows, metrics) and :func:`write_run`.
    """
    if max_attempts < 1:
        raise SlowthinkError(f"max_attempts must be >= 1, got {max_attempts}")
    started = time.perf_counter()
    state = resume_run(
        config, force=force, retry_errors=retry_errors, max_attempts=max_attempts, check_engine=engine is None
    )
    ran = run_pending(
        config, state, engine=engine, scorer=scorer, progress=progress, console=console, on_batch=on_batch
    )
    metrics = summarize_run(
        config, state, ran, max_attempts=max_attempts, retry_errors=retry_errors, started=started
    )
    files = write_run(config, state, metrics, plots=plots)
    return EvalResult(
        state.out, metrics, ran.new, state.resumed, ran.errors, files, metrics["errors"], state.problem_ids
    )


def resume_run(
    config: EvalConfig, *, force: bool, retry_errors: bool, max_attempts: int, check_engine: bool = True
) -> RunState:
    """Step 1: plan the jobs and check the specs (``check_engine``: the policy's too), load the
    problems, prepare the run folder, read its records (stale ones are an error, or set aside with
    ``force``) and find what each job has left: no record, or an error to retry."""
    jobs = plan_jobs(config)
    fmt = get_format(config.format)
    if check_engine:
        check_engine_spec(config.engine_spec)
    if config.grade_judge and config.grade_judge != "policy":
        check_engine_spec(config.grade_judge, what="--grade-judge")
    load = load_problems(config)
    out = prepare_out(config, jobs, force=force)
    records, bad_lines = read_records(out / RECORDS)
    stale = stale_records(records, jobs, config.seed, out, force=force)
    done = {
        k
        for k, r in records.items()
        if k not in stale and not (retry_errors and r.get("error") and attempts_of(r) < max_attempts)
    }
    pending = {job: [p for p in load.problems if (p.id, job.strategy, job.key) not in done] for job in jobs}
    return RunState(jobs, fmt, load, out, records, bad_lines, done, pending)


@dataclass(frozen=True)
class BatchTask:
    """One batch of one job, as the driver hands it to a worker: the problems, the samples they may
    reuse (:func:`reusable_samples`), the attempt number each record gets, and whether one of them
    had not failed before (the fail-fast rule of :func:`run_pending`)."""

    job: Job
    problems: list[Problem]
    reuse: dict[str, Trace] | None
    attempts: list[int]
    fresh: bool

    def __str__(self) -> str:
        ids = ", ".join(p.id for p in self.problems[:4]) + (", ..." if len(self.problems) > 4 else "")
        return f"{self.job.label}: {len(self.problems)} problem(s) {ids}"


@dataclass
class Solver:
    """What each worker builds once (:class:`SolverFactory`): the engine, scorer and format of a run."""

    engine: Any
    scorer: Any
    fmt: Format
    seed: int


@dataclass
class SolverFactory:
    """Builds a worker's :class:`Solver` from the run's config (picklable: Ray workers call it),
    then :func:`preflight` checks the engine and scorer against what is pending. ``engine`` /
    ``scorer`` objects given by the caller are used instead of building them (in-process only)."""

    config: EvalConfig
    jobs: list[Job]
    pending: dict[Job, list[Problem]]
    engine: Any = None
    scorer: Any = None

    def __call__(self) -> Solver:
        engine = self.engine if self.engine is not None else make_engine(self.config)
        scorer = self.scorer
        if scorer is None and any(STRATEGIES[j.strategy].needs_scorer for j in self.jobs if self.pending[j]):
            scorer = make_scorer(self.config, engine)
        preflight(self.jobs, self.pending, engine, scorer)
        return Solver(engine, scorer, get_format(self.config.format), self.config.seed)


def solve_task(solver: Solver, task: BatchTask) -> list[dict[str, Any]]:
    """A worker's part: solve the batch and make its graded records (written by the driver)."""
    results = solve_batch(
        task.problems, task.job, solver.engine, solver.fmt, solver.scorer, solver.seed, task.reuse
    )
    return [make_record(p, task.job, t, e, solver.seed, a) for (p, t, e), a in zip(results, task.attempts)]


def job_waves(jobs: Sequence[Job], share_samples: bool) -> list[list[Job]]:
    """Jobs whose batches may run at the same time: a path-wise job that may take the samples of an
    earlier path-wise job starts a new wave, after that job's records are in.

    >>> a, b, c = Job("majority", 4, (4,), True), Job("step_beam", 2, (2,)), Job("best_of_n", 4, (4,), True)
    >>> [[j.strategy for j in w] for w in job_waves([a, b, c], True)], len(job_waves([a, b, c], False))
    ([['majority', 'step_beam'], ['best_of_n']], 1)
    """
    waves: list[list[Job]] = []
    seen_pathwise = False
    for job in jobs:
        if not waves or (share_samples and job.pathwise and seen_pathwise):
            waves.append([])
        waves[-1].append(job)
        seen_pathwise = seen_pathwise or job.pathwise
    return waves


def run_pending(
    config: EvalConfig,
    state: RunState,
    *,
    engine=None,
    scorer=None,
    progress: bool = True,
    console=None,
    on_batch: Callable[[Job, list[dict[str, Any]]], None] | None = None,
) -> Ran:
    """Step 2: solve what is pending, ``batch_size`` problems at a time, through the sharding layer
    (:mod:`slowthink.distributed`): in this process, job by job and batch by batch, or with
    ``config.ray`` across Ray workers, each with the engine and scorer it builds from the config.
    Each finished batch's records are appended by this process alone, one batch at a time (and
    added to ``state.records``); a batch may take the samples of records that came in before it was
    handed out (:func:`job_waves`).

    The engine and scorer are built (at the first batch, in each worker) only when something is
    pending, then :func:`preflight` checks them. Fail-fast: when every problem of the first batch
    that comes back fails and one of them had not failed before, the run stops with one
    SlowthinkError line and nothing recorded for that batch.
    """
    if not state.todo:
        return Ran(engine)
    sharding = config.sharding()
    if sharding.distributed and (engine is not None or scorer is not None):
        raise SlowthinkError(
            "on Ray each worker builds its engine and scorer from the config: pass specs, not engine or scorer objects"
        )
    jobs, pending, records = state.jobs, state.pending, state.records
    ran = Ran(engine)
    succeeded = False
    index = pathwise_index(records)

    def tasks(wave: list[Job]):
        for job in wave:
            todo_job = pending[job]
            for i in range(0, len(todo_job), config.batch_size):
                batch = todo_job[i : i + config.batch_size]
                reuse = reusable_samples(job, batch, records, index) if config.share_samples else None
                earlier = [records.get((p.id, job.strategy, job.key)) for p in batch]
                yield BatchTask(
                    job,
                    batch,
                    reuse,
                    [attempts_of(prev) + 1 if prev and prev.get("error") else 1 for prev in earlier],
                    fresh=any(r is None or not r.get("error") for r in earlier),
                )

    def on_result(task: BatchTask, recs: list[dict[str, Any]]) -> None:
        nonlocal succeeded
        job = task.job
        failed = [r["error"] for r in recs if r["error"]]
        if not succeeded and task.fresh and len(failed) == len(recs):
            raise SlowthinkError(
                f"every problem of the first batch failed ({len(recs)} of {len(recs)}, "
                f"{job.label}), so the run stopped and recorded nothing for them: {failed[0]}"
            )
        writer.write(recs)
        succeeded = succeeded or len(failed) < len(recs)
        for r in recs:
            key = (r["id"], r["strategy"], r["key"])
            if r.get("pathwise") and key not in records:
                index.setdefault(r["id"], []).append(key)
            records[key] = r
        ran.new += len(recs)
        ran.errors += sum(r["error"] is not None for r in recs)
        st = bars[job]
        st[1] += sum(bool((r.get("grade") or {}).get("correct")) for r in recs)
        st[2] += len(recs)
        bar.advance(st[0], len(recs), acc=_acc_text(st[1], st[2]))
        if on_batch:
            on_batch(job, recs)

    if sharding.distributed and config.threads is None:  # a worker's engine uses the cores it reserved
        config = replace(config, threads=max(1, int(config.ray_cpus)))
    factory = SolverFactory(config, [j for j in jobs if pending[j]], pending, engine, scorer)
    with (
        RecordWriter(state.out / RECORDS) as writer,
        open_pool(factory, sharding) as pool,  # Ray connected (or not: one error line) before the bars
        ProgressBars(progress, ACC_FIELD, console=console) as bar,
    ):
        bars = {}
        for job in jobs:
            prior = [
                records[(p.id, job.strategy, job.key)]
                for p in state.problems
                if (p.id, job.strategy, job.key) in state.done
            ]
            correct = sum(bool((r.get("grade") or {}).get("correct")) for r in prior)
            bars[job] = [
                bar.add(
                    job.label, len(pending[job]) + len(prior), len(prior), acc=_acc_text(correct, len(prior))
                ),
                correct,
                len(prior),
            ]
        for wave in job_waves(jobs, config.share_samples):
            pool.run(tasks(wave), solve_task, on_result)
        if pool.local_state is not None:
            ran.engine = pool.local_state.engine
    return ran


def summarize_run(
    config: EvalConfig, state: RunState, ran: Ran, *, max_attempts: int, retry_errors: bool, started: float
) -> dict[str, Any]:
    """Step 3: grade the records (first the LLM grading judge, when configured), make one row per
    (strategy, N) and the metrics dict written as metrics.json (``started``: ``time.perf_counter()``
    when the run began, for its wall time)."""
    jobs, records, problems, load = state.jobs, state.records, state.problems, state.load
    grader = make_grader(config, jobs, records, problems, state.out, ran.engine)
    error_summary = summarize_errors(records, jobs, state.problem_ids, max_attempts, retry_errors)
    rows = job_rows(jobs, records, state.problem_ids, config.seeds, grader)
    engine = ran.engine
    return {
        "run": state.out.name,
        "benchmark": load.name,
        "load": {
            "summary": load.summary(),
            "problems": len(problems),
            "source": load.source,
            "skipped": dict(load.skipped),
            "notes": list(load.notes),
        },
        "config": _canonical(config.to_dict()),
        "engine": config.engine_spec,
        "format": config.format,
        "scorer": config.scorer,
        "rows": rows,
        "records": {
            "new": ran.new,
            "resumed": state.resumed,
            "errors_new": ran.errors,
            "unreadable_lines": state.unreadable_lines,
        },
        "errors": error_summary,
        **({"engine_stats": dict(engine.stats)} if isinstance(getattr(engine, "stats", None), dict) else {}),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "created": _now(),
        "notes": derivation_notes(jobs),
        "grading": {
            **({"judge": config.grade_judge, **grader.summary()} if config.grade_judge else {"judge": None}),
            "number_rules": number_rules_summary(problems),
        },
    }


def write_run(
    config: EvalConfig, state: RunState, metrics: dict[str, Any], *, plots: bool = True
) -> list[Path]:
    """Step 4: write metrics.json and, with ``plots``, the scaling plots, view.html (the search-tree
    viewer of every record) and report.html, which links to it; returns
    the run's files (records.jsonl and config.json first)."""
    out = state.out
    write_json(out / METRICS, metrics)
    files = [out / RECORDS, out / CONFIG, out / METRICS]
    if plots:
        pngs = plot_scaling(
            series(metrics["rows"]), out, title=f"{state.load.name} · {config.format} · {config.engine_spec}"
        )
        files += pngs
        views = record_views(state.records.values(), out / RECORDS)
        files.append(write_page(views, out / VIEW, title=f"slowthink view · {metrics.get('run')}"))
        files.append(
            write_run_report(metrics, state.records, state.problem_ids, out / REPORT, pngs, view=VIEW)
        )
    return files


GRADE_JUDGE_FILE = "grade_judge.jsonl"


def make_grader(config: EvalConfig, jobs, records, problems, out: Path, engine=None) -> Grader:
    """The grader of a run; with ``grade_judge``, first judge every answer the rules call wrong
    that is eligible (final answers and, for path-wise records, every sample's answer), batched."""
    if not config.grade_judge:
        return Grader()
    grader = Grader(store=out / GRADE_JUDGE_FILE)
    pairs = []
    for job in jobs:
        for p in problems:
            rec = records.get((p.id, job.strategy, job.key))
            if rec is None or not rec.get("trace"):
                continue
            pairs.append((rec.get("answer"), p))
            if rec.get("pathwise"):
                pairs += [(n.get("answer"), p) for n in rec["trace"].get("nodes", []) if n.get("parent") == 0]
    todo = grader.pending(pairs)
    if todo:
        if config.grade_judge == "policy":
            judge_engine = engine if engine is not None else make_engine(config)
        else:  # an engine spec of its own, built like the policy's
            judge_engine = make_engine(
                replace(config, engine=config.grade_judge, model=None, engine_options={})
            )
        grader.judge = AnswerJudge(judge_engine)
        grader.run_judge(todo)
    return grader


def derivation_notes(jobs: Sequence[Job]) -> list[str]:
    notes = []
    for j in jobs:
        if j.pathwise and len(j.report_ns) > 1:
            notes.append(
                f"{j.strategy}: generated once at N={j.n}; N={','.join(str(n) for n in j.report_ns if n != j.n)} "
                "derived by subsampling those samples (mean over seeds)"
            )
    return notes
