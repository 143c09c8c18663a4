"""``slowthink train sft | prm | export``; also ``python -m slowthink.train ...`` (for ``accelerate launch``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from slowthink.clifields import FieldOptions, flag, with_options
from slowthink.clikit import fail
from slowthink.train.export import export_gguf
from slowthink.train.prm import train_prm
from slowthink.train.recipe import Recipe
from slowthink.train.run import SUMMARY, RunResult
from slowthink.train.sft import train_sft
from slowthink.types import SlowthinkError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train a policy (SFT) or a process reward model, and export a policy to GGUF.",
)
_out = Console(stderr=True)

DataOpt = Annotated[
    Path, typer.Option("--data", help="Training data (JSON Lines; layouts in slowthink.train.data).")
]
OutOpt = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Output folder (checkpoints, final model, train_summary.json, "
        "loss.png); a run started again on it resumes from its newest checkpoint.",
    ),
]


@dataclass
class RecipeFlags:
    """The options ``sft`` and ``prm`` share: a recipe file and the hyper-parameters that override it."""

    config: Path | None = None
    """Recipe YAML (recipes/train/*.yaml); flags override it."""
    lora: bool | None = None
    """LoRA adapters (PEFT, merged on save) or all weights."""
    lr: float | None = None
    """Learning rate."""
    epochs: float | None = None
    """Epochs."""
    max_steps: int | None = None
    """Optimizer steps (overrides --epochs)."""
    batch_size: int | None = None
    """Examples per device per step."""
    max_length: int | None = None
    """Longest example in tokens."""
    device: str | None = None
    """auto | cpu | cuda."""

    def recipe(self, **flags: Any) -> Recipe:
        """The recipe file's settings (or the defaults), these flags and ``flags`` over them."""
        return Recipe.load(
            self.config,
            lora=self.lora,
            learning_rate=self.lr,
            epochs=self.epochs,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            max_length=self.max_length,
            device=self.device,
            **flags,
        )


#: The shared options of ``sft`` and ``prm``: ``@with_options(RECIPE_FLAGS)``, then ``RECIPE_FLAGS.build(options).recipe()``.
RECIPE_FLAGS = FieldOptions(RecipeFlags, {"lora": flag("--lora/--full")})


def _report(result: RunResult) -> None:
    loss = "n/a" if result.final_loss is None else f"{result.first_loss:.4f} -> {result.final_loss:.4f}"
    resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
    _out.print(
        f"[bold]{result.kind}[/bold]: {result.examples} examples, {result.steps} steps, {result.tokens} tokens, "
        f"loss {loss}, {result.wall_s:.1f}s{resumed}",
        highlight=False,
        soft_wrap=True,
    )
    _out.print(f"saved to {result.out} ({SUMMARY}, loss.png)", highlight=False, soft_wrap=True)


@app.command()
@with_options(RECIPE_FLAGS)
def sft(
    data: DataOpt,
    out: OutOpt,
    model: Annotated[
        str | None,
        typer.Option(
            help="Base model: a transformers folder (text LM or VLM) or a "
            ".gguf file; default: the embedded SmolLM2-135M-Instruct GGUF."
        ),
    ] = None,
    **options: Any,
) -> None:
    """Fine-tune a policy on SFT data (LLaVA conversations or AtomThink per-step records); the loss
    is on the assistant's tokens only."""
    try:
        _report(train_sft(data, model, out, RECIPE_FLAGS.build(options).recipe()))
    except SlowthinkError as e:
        fail(str(e))


@app.command()
@with_options(RECIPE_FLAGS)
def prm(
    data: DataOpt,
    out: OutOpt,
    model: Annotated[
        str | None, typer.Option(help="Base model folder (or .gguf; default: the embedded SmolLM2).")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="step_tag (a +/- token at each step tag, LM head) | "
            "token_cls (2-label head at each step separator)."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="Scorer input layout: math-shepherd | atomthink | trl (default: the protocol's)."),
    ] = None,
    **options: Any,
) -> None:
    """Train a process reward model on stepwise labels; the folder loads as --scorer prm:OUT."""
    try:
        recipe = RECIPE_FLAGS.build(options).recipe(protocol=protocol, preset=preset)
        result = train_prm(data, model, out, recipe)
        _report(result)
        _out.print(f"use it: --scorer prm:{result.out}", highlight=False, soft_wrap=True)
    except SlowthinkError as e:
        fail(str(e))


@app.command()
def export(
    model: Annotated[
        Path, typer.Option(help="A trained Llama-architecture folder (slowthink train sft --out).")
    ],
    out: Annotated[Path, typer.Option(help="The .gguf file to write.")],
    dtype: Annotated[str, typer.Option(help="Tensor type: f32 | f16 | q8_0.")] = "f16",
    like: Annotated[
        Path | None,
        typer.Option(
            help="GGUF whose tokenizer to copy (default: the base GGUF recorded "
            "in the folder's train_summary.json, if any)."
        ),
    ] = None,
) -> None:
    """Write a trained policy as GGUF, to run with --engine llamacpp --model OUT."""
    try:
        if like is None and (model / SUMMARY).is_file():
            base = json.loads((model / SUMMARY).read_text()).get("base_gguf")
            like = Path(base) if base else None
        path = export_gguf(model, out, dtype=dtype, like=like)
        _out.print(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); run it: --engine llamacpp --model {path}",
            highlight=False,
            soft_wrap=True,
        )
    except SlowthinkError as e:
        fail(str(e))
