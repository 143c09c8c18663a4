"""``slowthink analyze capabilities``: the capability profile of eval runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slowthink.analyze import LLMClassifier, RulesClassifier, analyze_capabilities, load_capabilities
from slowthink.clikit import fail
from slowthink.engines import EngineSpec, load_engine
from slowthink.scorers import load_scorer
from slowthink.types import SlowthinkError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Analyses of eval runs.")


def _engine(spec: str, threads: int | None):
    kind = EngineSpec.parse(spec).kind
    return load_engine(spec, **({"n_threads": threads} if threads and kind == "llamacpp" else {}))


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
            "judge (mean step score; judge runs on --engine)."
        ),
    ] = "outcome",
    engine: Annotated[
        str, typer.Option(help="Engine spec of --classifier judge and --scorer judge.")
    ] = "llamacpp",
    capabilities: Annotated[
        Path | None, typer.Option(help="A capability set YAML (default: the package's capabilities.yaml).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Steps per classifier request.")] = 8,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads of a llamacpp engine.")] = None,
    plots: Annotated[bool, typer.Option(help="Write the bar and radar plots.")] = True,
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the profile into.")] = Path(
        "capabilities"
    ),
) -> None:
    """Map every step of each run's chosen paths to a capability and score each capability per run:
    capabilities.json, capabilities.md/.html (table), capabilities_bar.png, capabilities_radar.png."""
    try:
        caps = load_capabilities(capabilities)
        shared = None
        if classifier == "rules":
            clf = RulesClassifier(caps)
        else:
            clf_engine = shared = _engine(engine if classifier == "judge" else classifier, threads)
            clf = LLMClassifier(caps, clf_engine, batch=batch, name=f"llm:{clf_engine.name}")
        if scorer == "outcome":
            step_scorer = "outcome"
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
            progress=lambda m: typer.echo(m, err=True),
        )
    except SlowthinkError as e:
        fail(str(e))
    for run, v in result.profile.to_dict()["runs"].items():
        typer.echo(f"{run}: {v['all']['steps']} steps, weakest capability: {v['weakest']}")
    typer.echo(f"wrote {', '.join(str(p) for p in result.files.values())}")
