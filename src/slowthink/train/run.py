"""What SFT and PRM training share: the base model's folder, LoRA, the Trainer run, the outputs.

A run writes into ``--out``: ``checkpoint-N/`` folders while it trains (``Trainer`` checkpoints; a
run started again on the same folder resumes from the newest one, also after ``kill -9``), then
the final model (LoRA merged into the weights) with its tokenizer or processor,
``train_summary.json`` (examples, tokens, steps, wall time, final loss), ``loss.png`` and
``log_history.json``.

torch, transformers, peft and trl are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slowthink.engines.hf_load import gguf_to_hf_folder, pick_device, resolve_source
from slowthink.train.recipe import Recipe
from slowthink.types import SlowthinkError

INSTALL_HINT = "pip install 'slowthink[hf,train]' (torch, transformers, trl, peft, accelerate)"
SUMMARY = "train_summary.json"


def require_training() -> None:
    """Fail with an install hint when a training library is missing."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        raise SlowthinkError(f"'slowthink train' needs {e.name}: {INSTALL_HINT}") from e


def model_folder(model: str | None) -> tuple[Path, Path | None]:
    """(transformers folder, source GGUF or None) for ``--model``: a folder as is; a GGUF file (or
    none: the embedded SmolLM2) dequantised once into a cached folder. A GGUF transformers cannot
    dequantise is one clear error (the model cannot be trained)."""
    folder, gguf_file = resolve_source(model, None)
    if gguf_file is None:
        return folder, None
    try:
        return gguf_to_hf_folder(folder, gguf_file), folder / gguf_file
    except Exception as e:  # the GGUF reader and dequantisers raise anything from struct.error to KeyError
        raise SlowthinkError(
            f"cannot train {folder / gguf_file}: transformers cannot load this GGUF ({type(e).__name__}: {e}); "
            "pass the original transformers folder, or a GGUF in F32/F16/BF16/Q8_0/Q4 types"
        ) from e


def is_vlm_folder(folder: Path) -> bool:
    cfg = json.loads((folder / "config.json").read_text())
    return "vision_config" in cfg


def add_lora(model: Any, recipe: Recipe, task_type: str, keep: Sequence[str] = ()) -> Any:
    """``model`` with LoRA adapters (PEFT); ``keep``: modules trained in full as well (a new head)."""
    from peft import LoraConfig, get_peft_model

    targets: Any = recipe.lora_targets
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=targets,
        task_type=task_type,
        modules_to_save=list(keep) or None,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise SlowthinkError(f"LoRA cannot wrap this model ({e}); set lora_targets in the recipe") from e


def freeze_vision(model: Any) -> None:
    """Stop gradients into the vision tower of a VLM (``freeze_vision: true``)."""
    for name, param in model.named_parameters():
        if any(k in name for k in ("vision_tower", "vision_model", "visual.")):
            param.requires_grad_(False)


@dataclass
class RunResult:
    """What a finished run reports (also written as ``train_summary.json``)."""

    kind: str
    out: str
    base_model: str
    """The transformers folder trained from."""
    base_gguf: str | None
    """The GGUF that folder was converted from (the tokenizer ``slowthink train export`` copies)."""
    examples: int
    tokens: int
    """Input tokens over the whole run (each epoch counts)."""
    trained_tokens: int
    """Tokens (SFT) or steps (PRM) that carry a loss, over the whole run."""
    steps: int
    epochs: float
    wall_s: float
    final_loss: float | None
    first_loss: float | None
    resumed_from: str | None
    lora: bool


def training_args(recipe: Recipe, out: Path, *, sft: bool) -> Any:
    """``SFTConfig`` (TRL) for SFT, ``TrainingArguments`` for the PRM."""
    import torch
    from transformers import TrainingArguments
    from trl import SFTConfig

    if recipe.deepspeed is not None:
        if not Path(recipe.deepspeed).is_file():
            raise SlowthinkError(
                f"recipe: DeepSpeed config not found: {recipe.deepspeed} (paths are relative to the "
                "folder you run from; recipes/train/ds_zero3.json from the repository root)"
            )
        if importlib.util.find_spec("deepspeed") is None:
            raise SlowthinkError(
                "recipe names a DeepSpeed config but deepspeed is not installed: pip install "
                "deepspeed (GPU machines), or set deepspeed: null for a single-device run"
            )
    device = pick_device(recipe.device)
    on_gpu = device.startswith("cuda")
    precision = recipe.precision
    if precision == "auto":
        precision = "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"
    kwargs: dict[str, Any] = dict(
        output_dir=str(out),
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum,
        lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_ratio,
        weight_decay=recipe.weight_decay,
        logging_steps=recipe.logging_steps,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        seed=recipe.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not on_gpu,
        deepspeed=recipe.deepspeed,
        remove_unused_columns=False,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    if sft:  # TRL turns gradient checkpointing on by default; the recipe decides
        kwargs["gradient_checkpointing"] = recipe.gradient_checkpointing
    elif recipe.gradient_checkpointing:
        kwargs["activation_checkpointing"] = True
    if sft:
        return SFTConfig(
            **kwargs, max_length=None, dataset_kwargs={"skip_prepare_dataset": True}, packing=False
        )
    return TrainingArguments(**kwargs)


def index_dataset(n: int) -> Any:
    """A ``datasets.Dataset`` of example indices: the trainer shuffles and batches indices, the
    collator looks the tokenized examples up (tensors stay tensors, nothing is copied)."""
    from datasets import Dataset

    return Dataset.from_dict({"index": list(range(n))})


def newest_checkpoint(out: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder of a run (its trainer state written last)."""
    found = []
    for p in out.glob("checkpoint-*"):
        if p.is_dir() and (p / "trainer_state.json").is_file() and p.name.split("-")[-1].isdigit():
            found.append((int(p.name.split("-")[-1]), p))
    return max(found)[1] if found else None


def train_and_save(
    trainer: Any,
    *,
    kind: str,
    out: Path,
    base_model: Path,
    base_gguf: Path | None,
    examples: int,
    tokens_per_epoch: int,
    trained_per_epoch: int,
    recipe: Recipe,
    save: Any,
) -> RunResult:
    """Run ``trainer`` (resuming from the newest checkpoint in ``out``), then ``save(model, out)``
    the final model, and write the summary, loss curve and log."""
    resume = newest_checkpoint(out)
    start = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.monotonic() - start
    model = trainer.model
    if recipe.lora:
        model = model.merge_and_unload()
    save(model, out)
    history = trainer.state.log_history
    # The logged losses; a run shorter than logging_steps has only the run's mean (train_loss).
    losses = [h["loss"] for h in history if "loss" in h] or [
        h["train_loss"] for h in history if "train_loss" in h
    ]
    epochs = float(trainer.state.epoch or 0.0)
    result = RunResult(
        kind=kind,
        out=str(out),
        base_model=str(base_model),
        base_gguf=str(base_gguf) if base_gguf else None,
        examples=examples,
        tokens=round(tokens_per_epoch * epochs),
        trained_tokens=round(trained_per_epoch * epochs),
        steps=int(trainer.state.global_step),
        epochs=epochs,
        wall_s=round(wall, 2),
        final_loss=losses[-1] if losses else None,
        first_loss=losses[0] if losses else None,
        resumed_from=str(resume) if resume else None,
        lora=recipe.lora,
    )
    (out / SUMMARY).write_text(json.dumps({**asdict(result), "recipe": asdict(recipe)}, indent=2) + "\n")
    (out / "log_history.json").write_text(json.dumps(history, indent=2) + "\n")
    plot_loss(history, out / "loss.png", title=f"slowthink train {kind}")
    return result


def plot_loss(history: Sequence[dict[str, Any]], path: Path, title: str) -> bool:
    """The training loss against the step as a PNG; False when matplotlib is missing or no loss was logged."""
    points = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    if not points:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
