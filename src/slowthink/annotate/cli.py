"""``slowthink annotate`` as a plain typer-compatible function (registered by the main CLI).

``python -m slowthink.annotate.cli --mode ...`` runs the same command without the main CLI.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from slowthink.annotate.config import AnnotateConfig
from slowthink.annotate.runner import run_annotate, run_import
from slowthink.benchmarks import parse_options
from slowthink.clikit import EngineFlags, fail, read_recipe, run_app
from slowthink.types import SlowthinkError


def annotate_command(
    ctx: typer.Context,
    mode: Annotated[
        str | None,
        typer.Option(help="stages | atomic-segment | atomic-dynamic | negatives | rollout-labels."),
    ] = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="Teacher engine spec: llamacpp | openai:URL#MODEL | hf:PATH | vllm:MODEL "
            "(atomic-segment without one: the deterministic split)."
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Policy engine spec that writes the rollouts (rollout-labels).")
    ] = None,
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            "-b",
            help="Benchmark name: gsm8k | math-v | reasoning-gym:TASK | ... (as in eval).",
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="A data file (JSONL/JSON/CSV/TSV/parquet), read with --map.")
    ] = None,
    field_map: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="Fields of --data: 'question=q,answer=a,solution=rationale'; "
            "other keys go to meta (atomic-segment reads meta 'solution').",
        ),
    ] = None,
    data_layout: Annotated[
        str | None,
        typer.Option(
            help="table (default: --data read with --map) | llava (LLaVA "
            "conversations, LLaVA-CoT's input: one item per human/gpt pair)."
        ),
    ] = None,
    benchmark_option: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark-option", "-O", help="Loader option key=value (split=train, size=200, seed=...)."
        ),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            help="Import a released dataset given by --data instead of annotating: "
            "llava-cot-100k | amath-sft | amath-prm | prm800k | math-shepherd."
        ),
    ] = None,
    from_run: Annotated[
        str | None,
        typer.Option(
            help="Items from the accepted chains of an earlier annotate folder (negatives, rollout-labels)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Annotate the first LIMIT items only.")] = None,
    out: Annotated[
        str | None,
        typer.Option(
            help="Output folder (annotations.jsonl, datasets, summary.json); re-running resumes it."
        ),
    ] = None,
    mode_option: Annotated[
        list[str] | None,
        typer.Option(
            "--mode-option",
            "-M",
            help="Mode option key=value (repeatable), e.g. -M max_attempts=3, -M k=8, -M source=solution.",
        ),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds one HTTP request may take (openai engine).")
    ] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="HTTP requests in flight at once (openai engine).")
    ] = None,
    max_retries: Annotated[
        int | None, typer.Option(help="Retries of a transient HTTP failure (429/5xx), with backoff.")
    ] = None,
    engine_option: Annotated[
        list[str] | None, typer.Option("--engine-option", "-E", help="Engine option key=value (repeatable).")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Items per round (one engine call); a finished batch is written "
            "before the next. Default 16, or 2x --max-concurrency."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Base seed of every request.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of an in-process engine (1 when runs share cores).")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Shard the batches across Ray workers, each with its own engines, records appended here: "
            "auto (the running cluster) | local (a Ray instance for this run) | HOST:PORT | ray://HOST:10001."
        ),
    ] = None,
    ray_workers: Annotated[
        int | None, typer.Option(help="Ray workers (engines); default: as many as the cluster fits.")
    ] = None,
    ray_cpus: Annotated[
        float | None, typer.Option(help="CPUs each Ray worker reserves (default 1; its engine's --threads).")
    ] = None,
    ray_gpus: Annotated[
        float | None, typer.Option(help="GPUs each Ray worker reserves (default 0; 1: an engine per GPU).")
    ] = None,
    price: Annotated[
        str | None,
        typer.Option(
            help="USD per million prompt and generated tokens, e.g. 2.5,10: the "
            "progress bar and summary show the cost so far."
        ),
    ] = None,
    ignore_images: Annotated[
        bool, typer.Option("--ignore-images", help="Drop images (text-only teachers).")
    ] = False,
    recipe: Annotated[
        str | None, typer.Option("--config", help="YAML recipe of annotate settings; flags win.")
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
) -> None:
    """Build SFT / PRM training data with a teacher: LLaVA-CoT stages, AtomThink atomic steps,
    corrupted-step negatives, Monte-Carlo step labels. Resumable: re-run the same command."""

    try:
        flags: dict[str, Any] = {
            "mode": mode,
            "teacher": teacher,
            "policy": policy,
            "benchmark": benchmark,
            "data": data,
            "fields": field_map,
            "data_layout": data_layout,
            "from_run": from_run,
            "limit": limit,
            "out": out,
            "batch_size": batch_size,
            "seed": seed,
            "threads": threads,
            "price": price,
            "ray": ray,
            "ray_workers": ray_workers,
            "ray_cpus": ray_cpus,
            "ray_gpus": ray_gpus,
            "benchmark_options": parse_options(benchmark_option) if benchmark_option else None,
            "mode_options": parse_options(mode_option) if mode_option else None,
            "engine_options": EngineFlags(
                api_key_env=api_key_env,
                timeout=timeout,
                max_concurrency=max_concurrency,
                max_retries=max_retries,
                engine_option=engine_option,
            ).options()
            or None,
            "ignore_images": ignore_images or None,
        }
        if release is not None:
            if not data or not out:
                raise SlowthinkError("--release needs the released file as --data and an --out folder")
            result = run_import(release, data, out, limit=limit)
            _print(result, as_json)
            return
        given = {k: v for k, v in flags.items() if v is not None}
        settings: dict[str, Any] = {}
        if recipe is not None:
            settings = read_recipe(
                recipe,
                AnnotateConfig,
                set(given) - {"engine_options", "mode_options", "benchmark_options"},
                "annotate settings",
            )
            for key in ("engine_options", "mode_options", "benchmark_options"):  # flags win key by key
                if isinstance(settings.get(key), dict) and key in given:
                    given[key] = {**settings[key], **given[key]}
        settings.update(given)
        if not settings.get("mode"):
            raise SlowthinkError(
                "no --mode: pass one of stages, atomic-segment, atomic-dynamic, negatives, rollout-labels"
            )
        if not settings.get("out"):
            raise SlowthinkError(
                "no --out: pass the folder for the annotations and datasets (re-running it resumes)"
            )
        result = run_annotate(AnnotateConfig(**settings), progress=progress)
    except SlowthinkError as e:
        fail(str(e))
        return
    _print(result, as_json)


def _print(result, as_json: bool) -> None:
    s = result.summary
    if as_json:
        sys.stdout.write(json.dumps(s, indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    rate = f"{s['accept_rate']:.1%}" if s["accept_rate"] is not None else "-"
    console.print(
        f"[bold]{s['mode']}[/bold] · teacher {s['teacher']} · {s['prompt_version']} · {s['source']}",
        highlight=False,
    )
    console.print(
        f"items {s['items']}: accepted {s['accepted']} ({rate}), rejected {s['rejected']}, errors {s['errors']} "
        f"· new {s['new']}, resumed {s['resumed']}",
        highlight=False,
    )
    for title, key in (
        ("rejected by reason", "rejected_by_reason"),
        ("skipped inputs", "skipped_inputs"),
        ("accepted by method", "accepted_by_method"),
    ):
        if s[key]:
            console.print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in s[key].items()), highlight=False)
    t = s["tokens"]
    cost = f" · ${t['cost_usd']:.4f}" if t.get("cost_usd") is not None else ""
    console.print(
        f"tokens: {t['prompt']} prompt + {t['generated']} generated in {t['calls']} item-calls{cost} · "
        f"{s['wall_time_s']:.1f}s",
        highlight=False,
    )
    files = ", ".join(f"{name} ({n} rows)" for name, n in s["datasets"].items()) or "no dataset rows"
    console.print(f"[bold]wrote[/bold] {result.out_dir}: {files}", soft_wrap=True, highlight=False)
    if s["errors"]:
        console.print(
            f"[yellow]warning:[/yellow] {s['errors']} item(s) failed in the engine: run the same command again "
            "to retry them",
            highlight=False,
        )


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("annotate")(annotate_command)

if __name__ == "__main__":
    sys.exit(run_app(app, prog_name="python -m slowthink.annotate.cli"))
