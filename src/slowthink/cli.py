"""Command line: ``slowthink solve | demo | eval | report | experiment | view | analyze | train | serve`` (``annotate`` grows here)."""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Annotated, Any

import typer
from rich.console import Console

from slowthink.analyze.cli import app as analyze_app
from slowthink.clifields import with_options
from slowthink.clikit import ENGINE_FLAGS, EngineFlags, fail, run_app
from slowthink.display import render_trace
from slowthink.engines import EngineSpec, check_engine_options, load_engine
from slowthink.evaluate.cli import EVAL_OPTIONS, eval_command, experiment_command, report_command
from slowthink.formats import get_format
from slowthink.images import check_image
from slowthink.inspect.cli import view_command
from slowthink.scorers import load_scorer
from slowthink.search import STRATEGIES, make_config
from slowthink.search import solve as run_strategy
from slowthink.search.presets import apply_preset
from slowthink.serve import DEFAULT_MODELS, ServeConfig, run_server
from slowthink.serve.app import api_key_from_env
from slowthink.train.cli import app as train_app
from slowthink.types import Problem, SlowthinkError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Step-by-step reasoning and test-time search for LLMs and VLMs.",
)
out = Console()
_fail = fail


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
        raise SlowthinkError(
            f"--model given twice: in --engine '{engine_spec}' and as --model '{model}'; keep one"
        )
    return f"{engine_spec.rstrip(':')}:{model}"


def build_scorer(strategy: str, scorer_spec: str | None, engine):
    """The scorer a strategy needs (``judge`` on the policy engine by default), or ``None``."""
    if scorer_spec is None and not STRATEGIES[strategy].needs_scorer:
        return None
    return load_scorer(scorer_spec or "judge", engine=engine)


def run_solve(
    problems,
    *,
    engine_spec,
    model,
    fmt_name,
    strategy,
    scorer=None,
    ignore_images=False,
    base_url=None,
    engine_options=None,
    threads=None,
    **opts,
):
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
    return run_strategy(problems, engine, fmt, strategy, scorer=judge, **opts)


@app.command()
@with_options(ENGINE_FLAGS, before="threads")
def solve(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    image: Annotated[list[str] | None, typer.Option("--image", help="Image file(s) of the question.")] = None,
    choices: Annotated[
        str | None, typer.Option(help="Options of a multiple-choice question, separated by '|' or ';'.")
    ] = None,
    answer: Annotated[str | None, typer.Option(help="Gold answer, to grade the result.")] = None,
    fmt: Annotated[str | None, EVAL_OPTIONS.option("format")] = None,
    strategy: Annotated[
        str,
        typer.Option(
            help="Search strategy: direct | cot | quick | majority | best_of_n | "
            "step_beam | greedy_step | stage_beam | sentence_beam."
        ),
    ] = "quick",
    n: Annotated[
        int | None, typer.Option(help="Samples / candidates per step (strategy default if unset).")
    ] = None,
    beam: Annotated[int | None, EVAL_OPTIONS.option("beam")] = None,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="Verifier: judge | symbolic | prm:PATH[#protocol-or-preset,key=value] | "
            "judge+symbolic (default: judge where one is needed)."
        ),
    ] = None,
    select: Annotated[str | None, EVAL_OPTIONS.option("select")] = None,
    aggregate: Annotated[str | None, EVAL_OPTIONS.option("aggregate")] = None,
    precheck: Annotated[
        bool,
        typer.Option(
            "--precheck",
            help="stage_beam: LLaVA-CoT's reasoning check inside "
            "every REASONING comparison (a candidate judged incorrect loses).",
        ),
    ] = False,
    preset: Annotated[str | None, EVAL_OPTIONS.option("preset")] = None,
    temperature: Annotated[float | None, EVAL_OPTIONS.option("temperature")] = None,
    max_depth: Annotated[int | None, EVAL_OPTIONS.option("max_depth")] = None,
    engine: Annotated[
        str, typer.Option(help="Engine spec: llamacpp | hf:PATH | openai:URL#MODEL | vllm:MODEL.")
    ] = "llamacpp",
    model: Annotated[
        str | None,
        typer.Option(help="Model path for the engine (e.g. a GGUF file), or the server's model name."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server URL (with --engine openai).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads of an in-process engine (default: all cores; "
            "use 1 when other jobs share the cores)."
        ),
    ] = None,
    seed: Annotated[int, EVAL_OPTIONS.option("seed")] = 0,
    ignore_images: Annotated[bool, EVAL_OPTIONS.option("ignore_images")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Trace as JSON.")] = False,
    **engine_flags: Any,
) -> None:
    """Answer one question, showing the reasoning, the answer and the compute used."""
    try:
        if not question.strip():
            raise SlowthinkError("the question is empty: pass the question text as the first argument")
        images = [check_image(p, fix="check the path given to --image") for p in (image or [])]
        opts = [c.strip() for c in choices.replace(";", "|").split("|")] if choices else None
        if opts is not None and len([o for o in opts if o]) < 2:
            raise SlowthinkError("--choices needs at least two options separated by '|'")
        problem = Problem(id="cli", question=question, images=images, choices=opts, answer=answer)
        extra = {
            k: v
            for k, v in {
                "beam": beam,
                "select": select,
                "aggregate": aggregate,
                "precheck": precheck or None,
                "temperature": temperature,
            }.items()
            if v is not None
        }
        if preset is not None:
            applied = apply_preset(preset, [strategy], fmt=fmt, scorer=scorer, options=extra)
            fmt, scorer, extra = applied.format, applied.scorer, applied.options
        engine_options = ENGINE_FLAGS.build(engine_flags).options()
        traces = run_solve(
            [problem],
            engine_spec=engine,
            model=model,
            fmt_name=fmt or "atomic",
            strategy=strategy,
            scorer=scorer,
            ignore_images=ignore_images,
            base_url=base_url,
            engine_options=engine_options,
            threads=threads,
            n=n,
            max_depth=max_depth,
            seed=seed,
            **extra,
        )
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
        out.print(f"[bold]question[/bold] {problem.question}")
        render_trace(trace, problem, out)


@app.command()
def demo(
    n: Annotated[
        int, typer.Option(help="Samples of the majority vote; stage_beam uses n/2 candidates per stage.")
    ] = 8,
    only: Annotated[str | None, typer.Option(help="Run one part only: majority | stage_beam.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Traces as JSON.")] = False,
) -> None:
    """Solve a bundled word problem on the embedded model (SmolLM2-135M-Instruct): a majority vote
    over atomic-step samples, then LLaVA-CoT stage-level beam search with the model judging itself."""
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
            out.rule(
                f"[bold]{strategy}[/bold] over {fmt}, N={opts['n']}, on the embedded SmolLM2-135M-Instruct"
            )
            judge = build_scorer(strategy, None, engine)
            trace = run_strategy([problem], engine, get_format(fmt), strategy, scorer=judge, seed=0, **opts)[
                0
            ]
            _show(trace, problem, as_json)
    except SlowthinkError as e:
        _fail(str(e))


@app.command()
def serve(
    engine: Annotated[
        str,
        typer.Option(help="Engine spec: llamacpp | llamacpp:GGUF | hf:PATH | openai:URL#MODEL | vllm:MODEL."),
    ] = "llamacpp",
    model: Annotated[
        str | None,
        typer.Option(
            help="Model path for the engine (e.g. a GGUF file), or the upstream server's model name."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Upstream OpenAI-compatible server URL (with --engine openai).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the key clients must send "
            "(Authorization: Bearer KEY); none: no key."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Format of models that name none (model?format=...).")
    ] = "atomic",
    model_name: Annotated[
        list[str] | None,
        typer.Option(
            "--model-name",
            help="A model /v1/models lists, e.g. "
            "'majority?n=8' (repeatable; default: " + ", ".join(DEFAULT_MODELS) + ").",
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads of an in-process engine.")] = None,
    engine_option: Annotated[
        list[str] | None, typer.Option("--engine-option", "-E", help="Engine option key=value (repeatable).")
    ] = None,
    batch_window_ms: Annotated[
        float,
        typer.Option(help="Requests for the same model arriving within this window share one search batch."),
    ] = 20.0,
    max_batch: Annotated[int, typer.Option(help="Most requests in one search batch.")] = 64,
    max_concurrent: Annotated[int, typer.Option(help="Most requests in flight; more get 429.")] = 64,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body in MiB; larger get 413.")] = 20.0,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds a request may wait for its search; then 504.")
    ] = 600.0,
    allow_local_images: Annotated[
        bool, typer.Option("--allow-local-images", help="Accept local file paths as image URLs.")
    ] = False,
    no_coalesce: Annotated[
        bool, typer.Option("--no-coalesce", help="One search per request (no batching window).")
    ] = False,
) -> None:
    """Serve search strategies behind an OpenAI-compatible API (/v1/chat/completions, /v1/models);
    the model name picks the strategy and its settings (quick, majority?n=8, step_beam?n=4&beam=2&scorer=prm:DIR)."""
    try:
        options = EngineFlags(engine_option=engine_option).options()
        if threads is not None:
            options["n_threads"] = threads
        config = ServeConfig(
            engine=engine_spec_of(engine, model, base_url),
            engine_options=options,
            format=fmt,
            models=tuple(model_name or DEFAULT_MODELS),
            api_key=api_key_from_env(api_key_env),
            batch_window_ms=batch_window_ms,
            max_batch=max_batch,
            max_concurrent=max_concurrent,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            timeout_s=request_timeout,
            allow_local_images=allow_local_images,
            coalesce=not no_coalesce,
        )
        get_format(fmt)
        run_server(config, host=host, port=port)
    except SlowthinkError as e:
        _fail(str(e))


app.command("eval")(eval_command)
app.command("report")(report_command)
app.command("experiment")(experiment_command)
app.command("view")(view_command)
app.add_typer(train_app, name="train")
app.add_typer(analyze_app, name="analyze")

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
