"""``slowthink eval`` and ``slowthink report`` as plain typer-compatible functions.

The main CLI registers them with ``app.command("eval")(eval_command)`` and
``app.command("report")(report_command)``. ``python -m slowthink.evaluate.cli eval ...`` runs the
same commands without the main CLI.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slowthink.benchmarks import parse_options
from slowthink.clifields import FieldOptions, flag, with_options
from slowthink.clikit import ENGINE_FLAGS, fail, read_recipe, run_app
from slowthink.evaluate.config import DEFAULT_NS, EvalConfig
from slowthink.evaluate.experiment import dry_run_lines, load_experiment, run_experiment
from slowthink.evaluate.metrics import token_total
from slowthink.evaluate.report import compare_rows, pivot, write_compare_report
from slowthink.evaluate.runner import run_eval
from slowthink.evaluate.suite import SUITES, run_suite
from slowthink.types import SlowthinkError

_err = Console(stderr=True)
_fail = fail


def default_out(benchmark: str | None, data: str | None) -> str:
    """``runs/<benchmark or data file stem>``, so re-running the same command resumes.

    >>> default_out("reasoning-gym:chain_sum", None), default_out(None, "/x/my data.jsonl")
    ('runs/reasoning-gym-chain_sum', 'runs/my-data')
    """
    name = benchmark if benchmark is not None else Path(data or "eval").stem
    return "runs/" + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "eval")


def _n_text(row: dict[str, Any]) -> str:
    if row.get("n") is None:
        return "-"
    return f"{row['n']}*" if row.get("derived_from") else str(row["n"])


def rows_table(rows: list[dict[str, Any]], title: str = "") -> Table:
    """The end-of-run summary: one line per (strategy, N). ``accuracy`` is over the problems that
    ran (no error); ``errors as wrong`` is the figure over every problem with an error counted wrong;
    ``total tok`` is policy + scorer/judge tokens (prompt + generated) per problem."""
    t = Table(title=title or None, title_justify="left", header_style="bold")
    for col, just in (
        ("strategy", "left"),
        ("N", "right"),
        ("accuracy", "right"),
        ("95% CI", "right"),
        ("ran", "right"),
        ("errors", "right"),
        ("errors as wrong", "right"),
        ("total tok", "right"),
        ("policy tok", "right"),
        ("calls", "right"),
        ("wall s", "right"),
    ):
        t.add_column(col, justify=just)
    for r in rows:
        lo, hi = r["ci95_ran"]
        t.add_row(
            r["strategy"],
            _n_text(r),
            f"{r['accuracy_ran']:.3f}",
            f"[{lo:.3f}, {hi:.3f}]",
            f"{r['ran']}" + (f" (+{r['missing']} todo)" if r.get("missing") else ""),
            str(r["errors"]),
            f"{r['accuracy']:.3f}",
            f"{r['total_tokens']:.0f}",
            f"{r['policy_tokens']:.0f}",
            f"{r['engine_calls']:.1f}",
            f"{r['wall_time_s']:.1f}",
        )
    return t


def error_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per row with errors: the accuracy over the problems that ran, beside the error count.

    >>> error_lines([{"strategy": "majority", "n": 4, "accuracy_ran": 0.42, "ran": 38, "errors": 2,
    ...               "accuracy": 0.399}])
    ['majority N=4: accuracy 0.420 over 38 problems that ran; 2 errors (0.399 with errors counted wrong)']
    """
    return [
        f"{r['strategy']}{'' if r.get('n') is None else ' N=' + _n_text(r)}: accuracy {r['accuracy_ran']:.3f} "
        f"over {r['ran']} problems that ran; {r['errors']} error{'s' if r['errors'] != 1 else ''} "
        f"({r['accuracy']:.3f} with errors counted wrong)"
        for r in rows
        if r.get("errors")
    ]


def _benchmark_options(items: list[str] | None) -> dict[str, Any]:
    return parse_options(items)


#: ``slowthink eval``'s options: one per :class:`EvalConfig` field, its help the field's docstring.
EVAL_OPTIONS = FieldOptions(
    EvalConfig,
    {
        "benchmark": flag("--benchmark", "-b"),
        "fields": flag("--map"),
        "benchmark_options": flag(
            "--benchmark-option",
            "-O",
            type=list[str] | None,
            default=None,
            parse=_benchmark_options,
            note="Repeatable: -O key=value.",
        ),
        "strategies": flag("--strategy", "-s", note="Repeatable."),
        "ns": flag("--n", type=str, default=",".join(map(str, DEFAULT_NS))),
        "stepwise_ns": flag("--stepwise-n", type=str | None),
        "out": flag(default=None, note="Default: runs/<benchmark or data file stem>."),
    },
    config_only={
        "engine_options": "the engine flags (--api-key-env, --timeout, --max-concurrency, "
        "--max-retries, -E), ',key=value' parts of --engine, or engine_options in a --config recipe"
    },
)


@with_options(EVAL_OPTIONS, ENGINE_FLAGS, before="force")
def eval_command(
    ctx: typer.Context,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start over when the run folder holds other settings (old records kept as a .bak file).",
        ),
    ] = False,
    retry_errors: Annotated[
        bool,
        typer.Option(
            "--retry-errors/--no-retry-errors",
            help="Re-run problems whose record holds an error (up to --max-attempts per problem), or keep them.",
        ),
    ] = True,
    max_attempts: Annotated[
        int, typer.Option(help="Most attempts per problem and job when errored problems are re-run.")
    ] = 3,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots and report.html.")
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics.json to stdout instead of the table.")
    ] = False,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="YAML recipe of EvalConfig fields (benchmark, strategies, ns, engine, scorer, ...); "
            "flags given on the command line win; unknown keys are errors.",
        ),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help=f"Run a benchmark suite instead of one benchmark ({', '.join(sorted(SUITES))}): every "
            "benchmark whose file is in --data-root, scored with its official metric; one table and "
            "VLMEvalKit prediction files in --out (default runs/suite-NAME).",
        ),
    ] = None,
    data_root: Annotated[
        str | None,
        typer.Option(help="The folder holding the suite's benchmark files (VLMEvalKit TSV names)."),
    ] = None,
    **options: Any,
) -> None:
    """Evaluate strategies on a benchmark at several N: resumable records, metrics, plots, report."""
    try:
        kwargs = EVAL_OPTIONS.values(options)
        kwargs["engine_options"] = ENGINE_FLAGS.build(options).options()
        if suite is not None or data_root is not None:
            _run_suite(
                ctx,
                suite,
                data_root,
                kwargs,
                recipe,
                force,
                retry_errors,
                max_attempts,
                progress,
                plots,
                as_json,
            )
            return
        if recipe is not None:
            from_recipe = read_recipe(recipe, EvalConfig, EVAL_OPTIONS.given(ctx), "EvalConfig fields")
            if isinstance(from_recipe.get("engine_options"), dict):  # flags win key by key
                from_recipe["engine_options"] = {**from_recipe["engine_options"], **kwargs["engine_options"]}
            kwargs.update(from_recipe)
        kwargs["out"] = kwargs["out"] or default_out(kwargs["benchmark"], kwargs["data"])
        config = EvalConfig(**kwargs)
        if max_attempts < 1:
            raise SlowthinkError(f"--max-attempts must be >= 1, got {max_attempts}")
        result = run_eval(
            config,
            force=force,
            retry_errors=retry_errors,
            max_attempts=max_attempts,
            progress=progress,
            plots=plots,
        )
    except SlowthinkError as e:
        _fail(str(e))
        return
    m = result.metrics
    if as_json:
        sys.stdout.write(json.dumps(m, indent=2, ensure_ascii=False) + "\n")
        _warn_errors(result.error_summary)
        return
    console = Console()
    console.print(rows_table(m["rows"], title=f"{m['load']['summary']}"))
    for line in error_lines(m["rows"]):
        console.print(line, highlight=False)
    console.print(
        f"[dim]{result.new_records} new record(s), {result.resumed_records} resumed, "
        f"{result.errors} error(s) this run · N* derived by subsampling · {m['wall_time_s']:.1f}s[/dim]"
    )
    stats = m.get("engine_stats") or {}
    if stats.get("retries"):
        console.print(
            f"[dim]engine: {stats.get('http_requests', 0)} HTTP request(s), {stats['retries']} retried "
            "(transient server faults; see metrics.json engine_stats)[/dim]"
        )
    if stats.get("rerouted"):
        console.print(
            f"[dim]engine pool: {stats['rerouted']} request(s) re-sent to another endpoint after a server "
            "failed (see metrics.json engine_stats.endpoints)[/dim]"
        )
    console.print(f"[bold]wrote[/bold] {', '.join(str(p) for p in result.files)}", soft_wrap=True)
    _warn_errors(result.error_summary)


def _run_suite(
    ctx: typer.Context,
    suite: str | None,
    data_root: str | None,
    kwargs: dict[str, Any],
    recipe: str | None,
    force: bool,
    retry_errors: bool,
    max_attempts: int,
    progress: bool,
    plots: bool,
    as_json: bool = False,
) -> None:
    """``eval --suite NAME --data-root DIR``: every benchmark of the suite, then one table
    (``--json``: suite.json on stdout)."""
    if suite is None or data_root is None:
        raise SlowthinkError(
            "--suite and --data-root go together: e.g. --suite llava-cot --data-root ~/LMUData"
        )
    if recipe is not None:
        from_recipe = read_recipe(recipe, EvalConfig, EVAL_OPTIONS.given(ctx), "EvalConfig fields")
        if isinstance(from_recipe.get("engine_options"), dict):
            from_recipe["engine_options"] = {**from_recipe["engine_options"], **kwargs["engine_options"]}
        kwargs.update(from_recipe)
    out = kwargs.pop("out", None) or f"runs/suite-{suite}"
    if max_attempts < 1:
        raise SlowthinkError(f"--max-attempts must be >= 1, got {max_attempts}")
    result = run_suite(
        suite,
        data_root,
        kwargs,
        out,
        on_line=lambda line: _err.print(
            f"[bold yellow]warning:[/bold yellow] {escape(line)}", soft_wrap=True
        ),
        force=force,
        retry_errors=retry_errors,
        max_attempts=max_attempts,
        progress=progress,
        plots=plots,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.table, indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    console.print(
        (result.out / "suite.md").read_text(encoding="utf-8"), markup=False, highlight=False, soft_wrap=True
    )
    console.print(f"[bold]wrote[/bold] {', '.join(str(p) for p in result.files)}", soft_wrap=True)


def errors_advice(summary: dict[str, Any]) -> str | None:
    """One line on the run's errored records and how to retry them (None when there are none).

    >>> errors_advice({"records": 3, "retryable": 2, "exhausted": 1, "max_attempts": 3,
    ...                "retry_errors": True, "example": "HTTP 500"})
    '3 record(s) hold an error (e.g. HTTP 500): run the same command again to retry 2 of them; 1 failed 3 attempts and are kept (raise --max-attempts to try them again)'
    """
    count = summary.get("records") or 0
    if not count:
        return None
    head = f"{count} record(s) hold an error (e.g. {summary.get('example')})"
    if not summary.get("retry_errors"):
        return f"{head}: they were kept (--no-retry-errors); run without it to retry them"
    parts = []
    if summary.get("retryable"):
        parts.append(f"run the same command again to retry {summary['retryable']} of them")
    if summary.get("exhausted"):
        parts.append(
            f"{summary['exhausted']} failed {summary.get('max_attempts')} attempts and are kept "
            "(raise --max-attempts to try them again)"
        )
    return f"{head}: {'; '.join(parts)}"


def _warn_errors(summary: dict[str, Any]) -> None:
    line = errors_advice(summary)
    if line:
        _err.print(f"[bold yellow]warning:[/bold yellow] {escape(line)}", highlight=False, soft_wrap=True)


def report_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders made by slowthink eval (--out).")],
    out: Annotated[Path, typer.Option(help="The HTML file to write (combined plots go next to it).")] = Path(
        "report.html"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows of every run as JSON.")] = False,
) -> None:
    """Compare eval runs side by side: a table here and an HTML report with combined plots."""
    try:
        if not runs:
            raise SlowthinkError("name at least one run folder: slowthink report runs/A runs/B")
        path, metrics = write_compare_report(runs, out)
    except SlowthinkError as e:
        _fail(str(e))
        return
    if as_json:
        sys.stdout.write(json.dumps(compare_rows(metrics), indent=2, ensure_ascii=False) + "\n")
        return
    keys, cells = pivot(metrics)
    t = Table(
        header_style="bold",
        title="accuracy [95% CI] (errors as wrong) · total tokens per problem (policy + scorer/judge, "
        "prompt + generated)",
        title_justify="left",
    )
    t.add_column("strategy")
    t.add_column("N", justify="right")
    for name in metrics:
        t.add_column(name, justify="right")
    for k in keys:
        row = [k[0], "-" if k[1] is None else f"{k[1]}*" if k[2] else str(k[1])]
        for name in metrics:
            r = cells[k].get(name)
            row.append(
                f"{r['accuracy']:.3f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] · {token_total(r):.0f} tok"
                if r
                else "-"
            )
        t.add_row(*row)
    console = Console()
    console.print(t)
    console.print(f"[bold]wrote[/bold] {path}")


def experiment_command(
    recipe: Annotated[
        str,
        typer.Argument(
            help="A recipe name in recipes/experiments (llava-cot-search, atomthink, ...) or a YAML file."
        ),
    ],
    size: Annotated[
        str | None, typer.Option(help="A size of the recipe (its sizes: key), e.g. cpu: the embedded model.")
    ] = None,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", "-b", help="Benchmark of every arm.")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Engine spec of every arm.")] = None,
    model: Annotated[str | None, typer.Option(help="Model path of every arm's engine.")] = None,
    scorer: Annotated[
        str | None,
        typer.Option(help="Scorer (verifier) of every arm: symbolic | judge | prm:PATH | py:module:Class."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Problems per arm, from the first.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads of an in-process engine.")] = None,
    out: Annotated[
        str | None,
        typer.Option(
            help="Experiment folder (one run folder per arm). Default: runs/experiments/<recipe>[-size]."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the planned runs and compute; load no model.")
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots and report.html per arm.")
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
    ] = True,
) -> None:
    """Run a paper's comparison: every arm of a recipe as a resumable eval run, then one report."""
    try:
        name = Path(recipe).stem
        folder = out or f"runs/experiments/{name}{'' if size is None else '-' + size}"
        overrides = {
            "benchmark": benchmark,
            "engine": engine,
            "model": model,
            "scorer": scorer,
            "limit": limit,
            "threads": threads,
        }
        exp = load_experiment(recipe, size=size, overrides=overrides, out=folder)
        if dry_run:
            for line in dry_run_lines(exp):
                sys.stdout.write(line + "\n")
            return
        _, files = run_experiment(exp, folder, progress=progress, plots=plots)
    except SlowthinkError as e:
        _fail(str(e))
        return
    console = Console()
    console.print(files[0].read_text(encoding="utf-8"), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold]wrote[/bold] {', '.join(str(p) for p in files)}", soft_wrap=True)


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="slowthink evaluation commands (also available as `slowthink eval` / `slowthink report`).",
)
app.command("eval")(eval_command)
app.command("report")(report_command)
app.command("experiment")(experiment_command)


if __name__ == "__main__":
    sys.exit(run_app(app, prog_name="python -m slowthink.evaluate.cli"))
