"""Experiments: a paper's comparison as one YAML recipe of named *arms*, each a normal eval run.

A recipe (``recipes/experiments/NAME.yaml``) holds

* ``title`` / ``description``;
* ``defaults``: :class:`~slowthink.evaluate.config.EvalConfig` fields every arm shares;
* ``sizes``: named override sets of ``defaults`` (``cpu``: the embedded model on a small
  benchmark), picked with ``--size``;
* ``arms``: ``{name: {EvalConfig fields}}``; an arm's keys win over the defaults;
* ``tables``: the paper's layout, each ``{title, columns: n | accuracy, rows: [{label, arm,
  strategy, n}]}``; ``columns: n`` puts one column per N of the arm (an N-free strategy repeats its
  one value), ``columns: accuracy`` one column (``n`` picks the row's N, default the largest).

:func:`run_experiment` runs every arm with :func:`~slowthink.evaluate.runner.run_eval` into
``OUT/<arm>/`` (resumable like any run), then writes ``OUT/experiment.md`` (the tables) and
``OUT/report.html`` (:func:`~slowthink.evaluate.report.write_compare_report` over the arms, with the
plots). :func:`plan_compute` is the ``--dry-run``: the jobs of each arm and upper bounds of their
engine calls and generated candidates, without loading a model or the problems.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slowthink.evaluate.config import EvalConfig, Job, plan_jobs
from slowthink.evaluate.report import load_run_metrics, write_compare_report
from slowthink.evaluate.runner import EvalResult, run_eval
from slowthink.search import STRATEGIES, make_config
from slowthink.types import SlowthinkError

#: Where named recipes live (``slowthink experiment NAME`` reads ``RECIPES_DIR/NAME.yaml``).
RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes" / "experiments"

RECIPE_KEYS = frozenset({"title", "description", "defaults", "sizes", "arms", "tables"})
TABLE_KEYS = frozenset({"title", "columns", "rows"})
ROW_KEYS = frozenset({"label", "arm", "strategy", "n"})
CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(EvalConfig))
#: Fields the experiment sets itself (each arm's run folder is ``OUT/<arm>``).
OWN_FIELDS = frozenset({"out"})


@dataclass(frozen=True)
class Row:
    """One table row: an arm's strategy (``n``: the N shown in an ``accuracy`` table)."""

    label: str
    arm: str
    strategy: str
    n: int | None = None


@dataclass(frozen=True)
class TableSpec:
    title: str
    columns: str
    rows: tuple[Row, ...]


@dataclass
class Experiment:
    """A loaded recipe at one size: the arms as ready :class:`EvalConfig` s and the tables."""

    name: str
    title: str
    description: str
    arms: dict[str, EvalConfig]
    tables: list[TableSpec] = field(default_factory=list)


def _bad(path: str, what: str) -> SlowthinkError:
    return SlowthinkError(f"experiment recipe {path}: {what}")


def _mapping(value: Any, path: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _check_fields(d: Mapping[str, Any], path: str, where: str) -> None:
    unknown = sorted(set(d) - (CONFIG_FIELDS - OWN_FIELDS))
    if unknown:
        raise _bad(
            path,
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: EvalConfig fields "
            f"({', '.join(sorted(CONFIG_FIELDS - OWN_FIELDS))})",
        )


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe file: a path to a YAML file, or the name of one in :data:`RECIPES_DIR`."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise SlowthinkError(
                f"experiment recipe {p} not found; pass a YAML file or a name: {', '.join(recipe_names())}"
            )
        return p
    named = RECIPES_DIR / f"{name_or_path}.yaml"
    if not named.is_file():
        raise SlowthinkError(
            f"no experiment recipe '{name_or_path}': choose one of {', '.join(recipe_names()) or '(none)'} "
            "or pass a YAML file"
        )
    return named


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")) if RECIPES_DIR.is_dir() else []


def load_experiment(
    name_or_path: str,
    *,
    size: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path = "runs/exp",
) -> Experiment:
    """Read and check a recipe: every arm becomes an :class:`EvalConfig` (defaults < size < arm <
    ``overrides``, the command line's flags) with its run folder ``out/<arm>``; every table row must
    name an arm and one of its strategies. Bad input is one :class:`SlowthinkError` line."""
    path = resolve_recipe(name_or_path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise _bad(where, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise _bad(where, f"must be a mapping with arms, got {type(data).__name__}")
    unknown = sorted(set(data) - RECIPE_KEYS)
    if unknown:
        raise _bad(where, f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(RECIPE_KEYS))}")
    defaults = _mapping(data.get("defaults"), where, "defaults")
    _check_fields(defaults, where, "defaults")
    sizes = {
        s: _mapping(d, where, f"sizes.{s}") for s, d in _mapping(data.get("sizes"), where, "sizes").items()
    }
    for s, d in sizes.items():
        _check_fields(d, where, f"sizes.{s}")
    if size is not None:
        if size not in sizes:
            raise _bad(where, f"no size '{size}'; it has {', '.join(sizes) or 'none'}")
        defaults = {**defaults, **sizes[size]}
    arms_raw = _mapping(data.get("arms"), where, "arms")
    if not arms_raw:
        raise _bad(where, "arms is empty: name at least one arm (name: {strategies: [...]})")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_fields(given, where, "command line")
    arms: dict[str, EvalConfig] = {}
    for arm, raw in arms_raw.items():
        if not isinstance(arm, str) or not arm or "/" in arm or arm.startswith("."):
            raise _bad(where, f"arm name {arm!r} must be a plain folder name")
        d = _mapping(raw, where, f"arm '{arm}'")
        _check_fields(d, where, f"arm '{arm}'")
        try:
            cfg = EvalConfig(**{**defaults, **d, **given, "out": str(Path(out) / arm)})
            plan_jobs(cfg)  # every strategy and option checked now, before any run
        except (SlowthinkError, TypeError, ValueError) as e:
            raise _bad(where, f"arm '{arm}': {e}") from None
        arms[arm] = cfg
    tables = [_table(t, i, arms, where) for i, t in enumerate(data.get("tables") or [])]
    return Experiment(
        name=path.stem,
        title=str(data.get("title") or path.stem),
        description=str(data.get("description") or "").strip(),
        arms=arms,
        tables=tables,
    )


def _table(raw: Any, i: int, arms: Mapping[str, EvalConfig], where: str) -> TableSpec:
    t = _mapping(raw, where, f"tables[{i}]")
    unknown = sorted(set(t) - TABLE_KEYS)
    if unknown:
        raise _bad(
            where, f"tables[{i}]: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(TABLE_KEYS))}"
        )
    columns = t.get("columns", "n")
    if columns not in ("n", "accuracy"):
        raise _bad(where, f"tables[{i}]: columns must be 'n' or 'accuracy', got {columns!r}")
    rows = []
    for j, r in enumerate(t.get("rows") or []):
        r = _mapping(r, where, f"tables[{i}].rows[{j}]")
        unknown = sorted(set(r) - ROW_KEYS)
        if unknown:
            raise _bad(
                where,
                f"tables[{i}].rows[{j}]: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(ROW_KEYS))}",
            )
        arm = r.get("arm")
        if arm not in arms:
            raise _bad(where, f"tables[{i}].rows[{j}]: arm {arm!r} is not one of {', '.join(arms)}")
        strategy = r.get("strategy") or arms[arm].strategies[0]
        if strategy not in arms[arm].strategies:
            raise _bad(
                where,
                f"tables[{i}].rows[{j}]: arm '{arm}' runs {', '.join(arms[arm].strategies)}, not {strategy!r}",
            )
        n = r.get("n")
        reported = {k for job in plan_jobs(arms[arm]) if job.strategy == strategy for k in job.report_ns}
        if n is not None and n not in reported:
            shown = ", ".join(str(k) for k in sorted(k for k in reported if k is not None)) or "none (N-free)"
            raise _bad(
                where, f"tables[{i}].rows[{j}]: arm '{arm}' reports {strategy} at N {shown}, not {n!r}"
            )
        rows.append(Row(str(r.get("label") or f"{arm} {strategy}"), arm, strategy, n))
    if not rows:
        raise _bad(where, f"tables[{i}] has no rows")
    return TableSpec(str(t.get("title") or f"table {i + 1}"), columns, tuple(rows))


# -- dry run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedJob:
    """One job of an arm with its compute bounds per problem (``depth``: search depths at most,
    ``candidates``: generated responses or steps at most) and over the experiment's problems.
    ``shares``: the earlier path-wise job of the arm whose samples this one takes (the runner's
    ``share_samples``, when the requests match); its samples are then not drawn again."""

    arm: str
    job: Job
    depth: int
    candidates: int
    problems: int | None
    batch_size: int
    shares: str | None = None

    @property
    def engine_calls(self) -> int | None:
        """Policy engine calls at most: one per search depth per batch of problems."""
        if self.problems is None:
            return None
        return 0 if self.shares else math.ceil(self.problems / self.batch_size) * self.depth

    @property
    def total_candidates(self) -> int | None:
        if self.problems is None:
            return None
        return 0 if self.shares else self.problems * self.candidates


def job_cost(job: Job) -> tuple[int, int]:
    """(depth, candidates per problem) upper bounds of one job.

    Path-wise and one-shot strategies draw whole responses in one call (N, or 1); ``quick`` takes one
    step per depth; ``step_beam`` draws ``n`` candidates for each of ``beam`` paths per depth;
    ``greedy_step``, ``stage_beam`` and ``sentence_beam`` draw ``n`` per depth (``max_depth`` depths).

    >>> job_cost(Job("majority", 8, (1, 2, 4, 8), pathwise=True))
    (1, 8)
    >>> job_cost(Job("step_beam", 4, (4,), overrides=(("max_depth", 5),)))
    (5, 40)
    """
    resolved = make_config(job.strategy, **job.options())
    entry = STRATEGIES[job.strategy]
    if entry.path is not None:
        return 1, resolved.n
    if job.strategy in ("direct", "cot"):
        return 1, 1
    if job.strategy == "quick":
        return resolved.max_depth, resolved.max_depth
    width = getattr(resolved, "beam", 1) if job.strategy == "step_beam" else 1
    return resolved.max_depth, resolved.max_depth * resolved.n * width


def plan_compute(exp: Experiment) -> list[PlannedJob]:
    out = []
    for arm, cfg in exp.arms.items():
        first: Job | None = None  # the arm's first path-wise job: later ones take its samples
        for job in plan_jobs(cfg):
            depth, cands = job_cost(job)
            shares = first.label if cfg.share_samples and job.pathwise and first is not None else None
            out.append(PlannedJob(arm, job, depth, cands, cfg.limit, cfg.batch_size, shares))
            if job.pathwise and first is None:
                first = job
    return out


def dry_run_lines(exp: Experiment) -> list[str]:
    """The planned runs and compute as text lines (what ``--dry-run`` prints)."""
    planned = plan_compute(exp)
    lines = [f"experiment {exp.name}: {exp.title}", ""]
    for arm, cfg in exp.arms.items():
        lines.append(
            f"arm {arm}: {cfg.benchmark or cfg.data}{'' if cfg.limit is None else f' (first {cfg.limit})'} · "
            f"engine {cfg.engine_spec} · format {cfg.format} · scorer {cfg.scorer or '-'}"
            f"{'' if cfg.preset is None else f' · preset {cfg.preset}'} · out {cfg.out}"
        )
    lines += ["", "arm | job | reports N | depth<= | candidates/problem<= | engine calls<= | candidates<="]
    for p in planned:
        ns = ",".join("-" if n is None else str(n) for n in p.job.report_ns)
        label = p.job.label + ("" if p.shares is None else f" (samples of {p.shares})")
        lines.append(
            f"{p.arm} | {label} | {ns} | {p.depth} | {p.candidates} | "
            f"{'?' if p.engine_calls is None else p.engine_calls} | "
            f"{'?' if p.total_candidates is None else p.total_candidates}"
        )
    known = [p for p in planned if p.engine_calls is not None]
    total_calls = sum(p.engine_calls or 0 for p in known)
    total_cands = sum(p.total_candidates or 0 for p in known)
    per_problem = sum(p.candidates for p in planned if p.shares is None)
    lines += [
        "",
        f"{len(exp.arms)} arms, {len(planned)} jobs; per problem <= {per_problem} generated candidates",
        (
            f"total <= {total_calls} policy engine calls, <= {total_cands} candidates"
            if len(known) == len(planned)
            else "problems unknown (no limit): totals are the per-problem figures x the benchmark's size"
        ),
        "bounds: step-wise depths at max_depth; scorer/judge calls come on top (one per candidate step or pair)",
    ]
    return lines


# -- run and report --------------------------------------------------------------------------


def run_experiment(
    exp: Experiment, out: str | Path, **run_options: Any
) -> tuple[dict[str, EvalResult], list[Path]]:
    """Run (or resume) every arm into ``out/<arm>``, then write ``experiment.md`` and ``report.html``."""
    results = {arm: run_eval(cfg, **run_options) for arm, cfg in exp.arms.items()}
    return results, write_experiment_report(exp, out)


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "–"
    lo, hi = row["ci95"]
    return f"{row['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]"


def table_markdown(spec: TableSpec, metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """One paper-layout table from the arms' ``metrics.json`` (accuracy with errors as wrong, 95% CI)."""

    def rows_of(r: Row) -> dict[Any, Mapping[str, Any]]:
        return {m["n"]: m for m in metrics[r.arm]["rows"] if m["strategy"] == r.strategy}

    lines = [f"### {spec.title}", ""]
    if spec.columns == "accuracy":
        lines += ["| method | N | accuracy [95% CI] |", "|---|---:|---:|"]
        for r in spec.rows:
            got = rows_of(r)
            key = r.n if r.n in got else (max((k for k in got if k is not None), default=None))
            lines.append(f"| {r.label} | {'-' if key is None else key} | {_cell(got.get(key))} |")
        return "\n".join(lines)
    ns = sorted({n for r in spec.rows for n in rows_of(r) if n is not None})
    lines += ["| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
    for r in spec.rows:
        got = rows_of(r)
        cells = [_cell(got.get(None) if None in got else got.get(n)) for n in ns]
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_experiment_report(exp: Experiment, out: str | Path) -> list[Path]:
    """``out/experiment.md`` (the recipe's tables) and ``out/report.html`` (the compare report)."""
    out = Path(out)
    dirs = [Path(cfg.out) for cfg in exp.arms.values()]
    metrics = {arm: load_run_metrics(d) for arm, d in zip(exp.arms, dirs)}
    parts = [f"# {exp.title}", ""]
    if exp.description:
        parts += [exp.description, ""]
    parts += [table_markdown(t, metrics) + "\n" for t in exp.tables]
    parts.append(
        "Accuracy counts an error as wrong; N-free strategies repeat their one value across N. "
        "Arms: " + ", ".join(f"`{a}` ({Path(c.out)})" for a, c in exp.arms.items()) + "."
    )
    out.mkdir(parents=True, exist_ok=True)
    md = out / "experiment.md"
    md.write_text("\n".join(parts) + "\n", encoding="utf-8")
    html, _ = write_compare_report(dirs, out / "report.html")
    return [md, html]
