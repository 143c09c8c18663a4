"""Command line: ``slowthink solve | demo`` (``eval``, ``report``, ``annotate``, ``train`` grow here)."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from slowthink.clikit import engine_flag_options, fail, run_app
from slowthink.types import Problem, SlowthinkError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Step-by-step reasoning and test-time search for LLMs and VLMs.")
out = Console()
_fail = fail


def _check_image(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise SlowthinkError(f"image not found: {path} (check the path given to --image)")
    try:
        from PIL import Image

        with Image.open(p) as im:
            im.verify()
    except Exception as e:
        raise SlowthinkError(f"image {path} cannot be read ({type(e).__name__}: {e}); pass a PNG/JPEG file") from e
    return str(p)


def engine_spec_of(engine_spec: str, model: str | None, base_url: str | None = None) -> str:
    """``--engine``, ``--model`` and ``--base-url`` as one spec string: ``--model`` fills a bare engine
    name; for ``openai`` the spec is ``openai:BASE_URL#MODEL``."""
    if base_url is not None:
        if engine_spec.split(":", 1)[0] != "openai":
            raise SlowthinkError(f"--base-url is for --engine openai, not '{engine_spec}'")
        return f"openai:{base_url}" + (f"#{model}" if model else "")
    if model is None:
        return engine_spec
    if ":" in engine_spec and not engine_spec.endswith(":"):
        raise SlowthinkError(f"--model given twice: in --engine '{engine_spec}' and as --model '{model}'; keep one")
    return f"{engine_spec.rstrip(':')}:{model}"


def build_scorer(strategy: str, scorer_spec: str | None, engine):
    """The scorer a strategy needs (``judge`` on the policy engine by default), or ``None``."""
    from slowthink.search import STRATEGIES

    if scorer_spec is None and not STRATEGIES[strategy].needs_scorer:
        return None
    from slowthink.scorers import load_scorer

    return load_scorer(scorer_spec or "judge", engine=engine)


def run_solve(problems, *, engine_spec, model, fmt_name, strategy, scorer=None, ignore_images=False,
              base_url=None, engine_options=None, threads=None, **opts):
    from slowthink.engines import EngineSpec, check_engine_options, load_engine
    from slowthink.formats import get_format
    from slowthink.search import make_config, solve

    fmt = get_format(fmt_name)
    try:
        make_config(strategy, **opts)  # validate options before loading a model
    except ValueError as e:
        raise SlowthinkError(f"bad option for strategy '{strategy}': {e}") from None
    spec = engine_spec_of(engine_spec, model, base_url)
    user = dict(engine_options or {})
    check_engine_options(EngineSpec.parse(spec).kind, user)
    engine = load_engine(spec, **user, **({"n_threads": threads} if threads is not None else {}))
    judge = build_scorer(strategy, scorer, engine)
    if ignore_images:
        for p in problems:
            p.images = []
    return solve(problems, engine, fmt, strategy, scorer=judge, **opts)


@app.command()
def solve(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    image: Annotated[list[str] | None, typer.Option("--image", help="Image file(s) of the question.")] = None,
    choices: Annotated[str | None, typer.Option(help="Options of a multiple-choice question, separated by '|' or ';'.")] = None,
    answer: Annotated[str | None, typer.Option(help="Gold answer, to grade the result.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Reasoning format: stages | atomic | sentences | free; "
                                            "options after '#', e.g. 'atomic#style=atomthink' "
                                            "(default: atomic, or the preset's).")] = None,
    strategy: Annotated[str, typer.Option(help="Search strategy: direct | cot | quick | majority | best_of_n | "
                                          "step_beam | greedy_step | stage_beam | sentence_beam.")] = "quick",
    n: Annotated[int | None, typer.Option(help="Samples / candidates per step (strategy default if unset).")] = None,
    beam: Annotated[int | None, typer.Option(help="Beam width of step_beam.")] = None,
    scorer: Annotated[str | None, typer.Option(help="Verifier: judge | symbolic | prm:PATH[#protocol-or-preset,key=value] | "
                                               "judge+symbolic (default: judge where one is needed).")] = None,
    select: Annotated[str | None, typer.Option(help="best_of_n: score | weighted | judge; stage_beam: judge | score.")] = None,
    aggregate: Annotated[str | None, typer.Option(help="Step scores to a path score: min | last | mean | prod.")] = None,
    precheck: Annotated[bool, typer.Option("--precheck", help="stage_beam: LLaVA-CoT's reasoning check inside "
                                           "every REASONING comparison (a candidate judged incorrect loses).")] = False,
    preset: Annotated[str | None, typer.Option(help="A paper's procedure end to end: llava-cot (with --strategy "
                                               "stage_beam). Options you give win.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (strategy default if unset).")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Most steps on one path.")] = None,
    engine: Annotated[str, typer.Option(help="Engine spec: llamacpp | hf:PATH | openai:URL#MODEL | vllm:MODEL.")] = "llamacpp",
    model: Annotated[str | None, typer.Option(help="Model path for the engine (e.g. a GGUF file), or the server's model name.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL (with --engine openai).")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Name of the environment variable holding the API key.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one HTTP request may take (openai engine's timeout_s).")] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="HTTP requests in flight at once (openai engine).")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries of a failed HTTP request (openai engine).")] = None,
    engine_option: Annotated[list[str] | None, typer.Option("--engine-option", "-E", help="Engine option key=value "
                                                            "(repeatable), e.g. -E n_ctx=8192 or -E backoff_max_s=5.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads of an in-process engine (default: all cores; "
                                                "use 1 when other jobs share the cores).")] = None,
    seed: Annotated[int, typer.Option(help="Base seed of every request.")] = 0,
    ignore_images: Annotated[bool, typer.Option("--ignore-images", help="Drop images (text-only engines).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Trace as JSON.")] = False,
) -> None:
    """Answer one question, showing the reasoning, the answer and the compute used."""
    try:
        if not question.strip():
            raise SlowthinkError("the question is empty: pass the question text as the first argument")
        images = [_check_image(p) for p in (image or [])]
        opts = [c.strip() for c in choices.replace(";", "|").split("|")] if choices else None
        if opts is not None and len([o for o in opts if o]) < 2:
            raise SlowthinkError("--choices needs at least two options separated by '|'")
        problem = Problem(id="cli", question=question, images=images, choices=opts, answer=answer)
        extra = {k: v for k, v in {"beam": beam, "select": select, "aggregate": aggregate,
                                   "precheck": precheck or None, "temperature": temperature}.items() if v is not None}
        if preset is not None:
            from slowthink.search.presets import apply_preset

            applied = apply_preset(preset, [strategy], fmt=fmt, scorer=scorer, options=extra)
            fmt, scorer, extra = applied.format, applied.scorer, applied.options
        engine_options = engine_flag_options(api_key_env=api_key_env, timeout=timeout, max_concurrency=max_concurrency,
                                             max_retries=max_retries, engine_option=engine_option)
        traces = run_solve([problem], engine_spec=engine, model=model, fmt_name=fmt or "atomic", strategy=strategy,
                           scorer=scorer, ignore_images=ignore_images, base_url=base_url,
                           engine_options=engine_options, threads=threads, n=n, max_depth=max_depth, seed=seed,
                           **extra)
    except SlowthinkError as e:
        _fail(str(e))
        return
    _show(traces[0], problem, as_json)
    if traces[0].error:
        raise typer.Exit(1)


def _show(trace, problem, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(trace.to_json(indent=2) + "\n")
    else:
        from slowthink.display import render_trace

        out.print(f"[bold]question[/bold] {problem.question}")
        render_trace(trace, problem, out)


@app.command()
def demo(
    n: Annotated[int, typer.Option(help="Samples of the majority vote; stage_beam uses n/2 candidates per stage.")] = 8,
    only: Annotated[str | None, typer.Option(help="Run one part only: majority | stage_beam.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Traces as JSON.")] = False,
) -> None:
    """Solve a bundled word problem on the embedded model (SmolLM2-135M-Instruct): a majority vote
    over atomic-step samples, then LLaVA-CoT stage-level beam search with the model judging itself."""
    from slowthink.engines import load_engine
    from slowthink.formats import get_format
    from slowthink.search import solve as run_strategy

    data = json.loads(resources.files("slowthink").joinpath("demo/problem.json").read_text())
    problem = Problem.from_dict(data)
    parts = [("majority", "atomic", {"n": n}), ("stage_beam", "stages", {"n": max(2, n // 2)})]
    if only is not None:
        parts = [p for p in parts if p[0] == only]
        if not parts:
            _fail(f"--only must be majority or stage_beam, got '{only}'")
    try:
        engine = load_engine("llamacpp")
        for strategy, fmt, opts in parts:
            out.rule(f"[bold]{strategy}[/bold] over {fmt}, N={opts['n']}, on the embedded SmolLM2-135M-Instruct")
            judge = build_scorer(strategy, None, engine)
            trace = run_strategy([problem], engine, get_format(fmt), strategy, scorer=judge, seed=0, **opts)[0]
            _show(trace, problem, as_json)
    except SlowthinkError as e:
        _fail(str(e))


from slowthink.evaluate.cli import eval_command, report_command  # noqa: E402  (light: typer, rich, types)

app.command("eval")(eval_command)
app.command("report")(report_command)

from slowthink.annotate.cli import annotate_command  # noqa: E402  (light: typer, rich, types)

app.command("annotate")(annotate_command)


def main(args: list[str] | None = None) -> None:
    """The ``slowthink`` console script: usage errors and SlowthinkErrors print one line, exit 2."""
    try:
        code = run_app(app, args, prog_name="slowthink")
    except SlowthinkError as e:  # pragma: no cover - commands catch their own
        try:
            fail(str(e))
        except typer.Exit as x:
            code = x.exit_code
    sys.exit(code)


if __name__ == "__main__":
    main()
