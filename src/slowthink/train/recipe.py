"""Training recipes: the hyper-parameters of a run, from YAML (``--config recipe.yaml``) and flags.

``recipes/train/`` holds the papers' settings (LLaVA-CoT, AtomThink) and CPU-sized ones. A recipe
file is a mapping of :class:`Recipe` fields; an unknown key is one clear error.

>>> r = Recipe.from_mapping({"learning_rate": 1e-5, "epochs": 3, "batch_size": 4})
>>> (r.learning_rate, r.epochs, r.batch_size, r.lora)
(1e-05, 3.0, 4, False)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slowthink.types import SlowthinkError


@dataclass
class Recipe:
    """Hyper-parameters of one training run (SFT or PRM)."""

    learning_rate: float = 1e-5
    """Peak learning rate (AdamW)."""
    epochs: float = 1.0
    """Passes over the data (ignored when ``max_steps`` is set)."""
    max_steps: int = -1
    """Optimizer steps to run; -1: as many as ``epochs`` take."""
    batch_size: int = 1
    """Examples per device per step."""
    grad_accum: int = 1
    """Gradient accumulation steps (effective batch = batch_size x grad_accum x devices)."""
    lr_scheduler: str = "linear"
    """transformers scheduler name: linear, cosine, constant, constant_with_warmup, ..."""
    warmup_ratio: float = 0.0
    """Fraction of the steps spent warming the learning rate up."""
    weight_decay: float = 0.0
    max_length: int = 2048
    """Longest example in tokens; longer ones are cut at the end (a PRM's steps past it are not trained)."""
    lora: bool = False
    """Train LoRA adapters (PEFT) instead of every weight; merged into the saved model."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    """PEFT ``target_modules``: ``all-linear`` or a comma-separated list of module names."""
    freeze_vision: bool = False
    """VLMs: keep the vision tower frozen (LLaVA-CoT and AtomThink train it too)."""
    gradient_checkpointing: bool = False
    precision: str = "auto"
    """``auto`` (bf16 on a GPU that has it, else fp32), ``fp32``, ``bf16``, ``fp16``."""
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 50
    """Checkpoint every this many steps (resumable after a kill)."""
    save_total_limit: int = 2
    deepspeed: str | None = None
    """A DeepSpeed config JSON (ZeRO-3: ``recipes/train/ds_zero3.json``), for ``accelerate launch``."""
    protocol: str = "step_tag"
    """PRM only: ``step_tag`` or ``token_cls``."""
    preset: str | None = None
    """PRM only: the scorer preset whose input layout is trained (``math-shepherd``, ``atomthink``,
    ``trl``); default: the protocol's (``step_tag`` -> ``math-shepherd``, ``token_cls`` -> ``trl``)."""
    device: str = "auto"
    """``auto`` (a GPU when there is one), ``cpu``, ``cuda``."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "logging_steps", "save_steps", "max_length", "lora_r"):
            if getattr(self, name) < 1:
                raise SlowthinkError(f"recipe: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise SlowthinkError(f"recipe: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not self.learning_rate > 0:
            raise SlowthinkError(f"recipe: learning_rate must be > 0, got {self.learning_rate}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise SlowthinkError(
                f"recipe: precision must be auto, fp32, bf16 or fp16, got '{self.precision}'"
            )
        if self.protocol not in ("step_tag", "token_cls"):
            raise SlowthinkError(f"recipe: protocol must be step_tag or token_cls, got '{self.protocol}'")

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "recipe") -> Recipe:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SlowthinkError(
                f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            kind = {"float": float, "int": int}.get(str(kinds[key]))
            try:  # YAML reads 1e-5 as a string; 3 epochs as an int
                values[key] = kind(value) if kind is not None and not isinstance(value, bool) else value
            except (TypeError, ValueError):
                raise SlowthinkError(f"{where}: {key} must be a number, got {value!r}") from None
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path | None, **overrides: Any) -> Recipe:
        """The recipe of a YAML file (or the defaults), with ``overrides`` that are not None on top."""
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise SlowthinkError(f"recipe not found: {p} (see recipes/train/)")
            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as e:
                raise SlowthinkError(f"{p}: not valid YAML ({e})") from e
            if not isinstance(data, dict):
                raise SlowthinkError(f"{p}: a recipe is a mapping of fields (learning_rate: 1e-5, ...)")
            data.pop("description", None)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(data, where=str(path or "recipe"))
