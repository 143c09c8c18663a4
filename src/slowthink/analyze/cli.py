"""``slowthink analyze capabilities``: the capability profile of eval runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slowthink.analyze import (
    LLMClassifier,
    RolloutScorer,
    RulesClassifier,
    analyze_capabilities,
    load_capabilities,
    parse_rollouts,
)
from slowthink.analyze.rollouts import is_rollouts, run_policy
from slowthink.clikit import fail
from slowthink.engines import EngineSpec, load_engine
from slowthink.options import PY_PREFIX, load_py_object
from slowthink.scorers import load_scorer
from slowthink.types import SlowthinkError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Analyses of eval runs.")


def _engine(spec: str, threads: int | None, options: dict | None = None):
    if spec.startswith(PY_PREFIX):  # an importable engine class (the test doubles)
        return load_py_object(spec, **(options or {}))
    kind = EngineSpec.parse(spec).kind
    threads_opt = {"n_threads": threads} if threads and kind == "llamacpp" else {}
    return load_engine(spec, **{**(options or {}), **threads_opt})


@app.command("capabilities")
def capabilities_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders made by slowthink eval --out.")],
    classifier: Annotated[
        str,
        typer.Option(
            help="rules (keywords and patterns of the capability set), judge (an LLM on --engine) "
            "or an engine spec to classify with."
        ),
    ] = "rules",
    scorer: Annotated[
        str,
        typer.Option(
            help="outcome (share of a capability's steps on chains graded right), prm:PATH or "
            "judge (mean step score; judge runs on --engine), or rollouts[#k=8,label=soft|hard,"
            "temperature=0.7,max_tokens=256,seed=0] (mean Math-Shepherd rollout label of the steps, "
            "by --policy; cached in OUT/rollouts_cache.jsonl)."
        ),
    ] = "outcome",
    policy: Annotated[
        str | None,
        typer.Option(
            help="Engine spec of the rollout policy of --scorer rollouts (default: the runs' engine, "
            "from their config.json; the embedded llamacpp model for a run without one)."
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Engine spec of --classifier judge and --scorer judge.")
    ] = "llamacpp",
    capabilities: Annotated[
        Path | None, typer.Option(help="A capability set YAML (default: the package's capabilities.yaml).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Steps per classifier request.")] = 8,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads of a llamacpp engine.")] = None,
    plots: Annotated[bool, typer.Option(help="Write the bar and radar plots.")] = True,
    into_runs: Annotated[
        bool,
        typer.Option(
            help="Also write each run's profile into its folder, where its report.html shows the table."
        ),
    ] = True,
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the profile into.")] = Path(
        "capabilities"
    ),
) -> None:
    """Map every step of each run's chosen paths to a capability and score each capability per run:
    capabilities.json, capabilities.md/.html (table), capabilities_bar.png, capabilities_radar.png;
    and into each run folder its own capabilities.json and bar plot, shown in its report.html."""
    try:
        caps = load_capabilities(capabilities)
        shared = None
        if classifier == "rules":
            clf = RulesClassifier(caps)
        else:
            clf_engine = shared = _engine(engine if classifier == "judge" else classifier, threads)
            clf = LLMClassifier(caps, clf_engine, batch=batch, name=f"llm:{clf_engine.name}")
        if policy and not is_rollouts(scorer):
            raise SlowthinkError("--policy is the rollout policy: use it with --scorer rollouts")
        if scorer == "outcome":
            step_scorer = "outcome"
        elif is_rollouts(scorer):
            settings = parse_rollouts(scorer)  # a bad option fails before any model loads
            spec, options = (policy, {}) if policy else run_policy(runs)
            step_scorer = RolloutScorer(_engine(spec, threads, options), settings)
        else:
            needs_engine = "judge" in scorer.split("#", 1)[0]
            judge_engine = (shared or _engine(engine, threads)) if needs_engine else None
            step_scorer = load_scorer(scorer, judge_engine)
        result = analyze_capabilities(
            runs,
            out,
            caps=caps,
            classifier=clf,
            scorer=step_scorer,
            plots=plots,
            into_runs=into_runs,
            progress=lambda m: typer.echo(m, err=True),
        )
    except SlowthinkError as e:
        fail(str(e))
    for run, v in result.profile.to_dict()["runs"].items():
        typer.echo(f"{run}: {v['all']['steps']} steps, weakest capability: {v['weakest']}")
    typer.echo(f"wrote {', '.join(str(p) for p in result.files.values())}")
    if result.reports:
        typer.echo(f"capability table added to {', '.join(str(p) for p in result.reports)}")
