"""``slowthink train prm``: a process reward model from stepwise labels, loadable as ``prm:DIR#protocol``.

The inputs are built by the scorer itself (:meth:`slowthink.scorers.prm.PRMScorer.encode` on the
base model, with the preset's wrapper), so training and scoring read exactly the same tokens at
exactly the same positions. The loss is a cross-entropy at every step's read position:

``step_tag``
    the LM head's logits of the good and bad tokens (``+`` / ``-``) at the step tag, softmaxed over
    those two (AtomThink / Math-Shepherd / OpenR: the PRM's score is P(good) of the same softmax);
``token_cls``
    a 2-label token-classification head at the step separator (TRL's stepwise PRM).

A label is a probability in [0, 1]: hard labels are 0/1, a soft label (a completion rate) is the
target probability of *good*. TRL >= 1.0 has no PRM trainer any more, so this is a small
``transformers.Trainer`` subclass. The folder gets the model, its tokenizer/processor and
``slowthink_prm.json`` (protocol, preset fields, tag and label tokens, base model), which the scorer
reads: ``--scorer prm:DIR`` needs no protocol.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slowthink.scorers.base import ScoreQuery
from slowthink.scorers.prm import METADATA, PRMConfig, PRMScorer
from slowthink.train.data import StepExample, load_stepwise
from slowthink.train.recipe import Recipe
from slowthink.train.run import (
    RunResult,
    add_lora,
    freeze_vision,
    index_dataset,
    model_folder,
    require_training,
    train_and_save,
    training_args,
)
from slowthink.types import SlowthinkError

#: The PRMConfig fields that fix how the input is laid out: saved with the model.
LAYOUT_FIELDS = (
    "protocol",
    "preset",
    "step_tag",
    "step_tag_prefix",
    "step_joiner",
    "good_token",
    "bad_token",
    "separator",
    "good_label",
    "question_joiner",
    "number_steps",
    "chat",
    "system",
    "add_bos",
)


@dataclass
class PRMItem:
    """One tokenized PRM example: ids, the read position and target P(good) of each kept step."""

    input_ids: list[int]
    positions: list[int]
    targets: list[float]
    extra: dict[str, Any] | None = None


def encode_items(scorer: PRMScorer, examples: list[StepExample], max_length: int) -> list[PRMItem]:
    """Every example as the scorer's input, cut at ``max_length`` tokens (steps read past the cut
    are dropped; an example left with none is an error)."""
    items = []
    for e in examples:
        seq = scorer.encode(ScoreQuery(e.problem, e.steps))
        kept = [(p, t) for p, t in zip(seq.positions, e.labels) if p is not None and p < max_length]
        if not kept:
            raise SlowthinkError(
                f"PRM example {e.problem.id}: no step fits in max_length {max_length}; raise it in the recipe"
            )
        items.append(
            PRMItem(seq.ids[:max_length], [p for p, _ in kept], [t for _, t in kept], seq.extra or None)
        )
    return items


def collate_items(batch: list[PRMItem], pad_id: int) -> dict[str, Any]:
    """Right-padded ids and mask; step positions and targets padded with -1 (no step)."""
    import torch

    width = max(len(i.input_ids) for i in batch)
    steps = max(len(i.positions) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    pos = torch.full((len(batch), steps), -1, dtype=torch.long)
    tgt = torch.full((len(batch), steps), -1.0)
    for b, item in enumerate(batch):
        ids[b, : len(item.input_ids)] = torch.tensor(item.input_ids)
        mask[b, : len(item.input_ids)] = 1
        pos[b, : len(item.positions)] = torch.tensor(item.positions)
        tgt[b, : len(item.targets)] = torch.tensor(item.targets)
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "prm_positions": pos, "prm_targets": tgt}
    extras = [i.extra for i in batch if i.extra]
    if extras:
        if len(extras) != len(batch):
            raise SlowthinkError("a PRM batch mixes examples with and without images: use batch_size 1")
        for k in extras[0]:
            out[k] = torch.cat([e[k] for e in extras], dim=0)
    return out


def step_loss(logits: Any, positions: Any, targets: Any, columns: list[int]) -> Any:
    """Mean cross-entropy between the 2-way softmax over ``columns`` ([good, bad]) of ``logits`` at
    ``positions`` and the target P(good). Positions of -1 are padding.

    >>> import torch
    >>> logits = torch.zeros(1, 3, 4); logits[0, 1, 2] = 5.0
    >>> round(float(step_loss(logits, torch.tensor([[1]]), torch.tensor([[1.0]]), [2, 3])), 4)
    0.0067
    """
    import torch

    valid = positions >= 0
    rows = torch.arange(logits.shape[0], device=logits.device).unsqueeze(1).expand_as(positions)
    picked = logits[rows[valid], positions[valid]][:, columns].float()
    logp = torch.log_softmax(picked, dim=-1)
    t = targets[valid].to(logp.dtype)
    return -(t * logp[:, 0] + (1 - t) * logp[:, 1]).mean()


def prm_trainer_class() -> type:
    """``transformers.Trainer`` with the step loss (built on call: transformers is imported late)."""
    from transformers import Trainer

    class StepTrainer(Trainer):
        columns: list[int] = []

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, **kw: Any
        ) -> Any:
            positions = inputs.pop("prm_positions")
            targets = inputs.pop("prm_targets")
            outputs = model(**inputs)
            logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
            loss = step_loss(logits, positions, targets, self.columns)
            return (loss, outputs) if return_outputs else loss

    return StepTrainer


def train_prm(
    data: str | Path, model: str | None, out: str | Path, recipe: Recipe, **layout: Any
) -> RunResult:
    """Train a PRM from ``model`` on the stepwise file ``data``; ``layout``: PRMConfig fields
    on top of the recipe's protocol and preset (``step_tag="ки"``)."""
    require_training()
    examples = load_stepwise(data)
    folder, gguf = model_folder(model)
    config = PRMConfig(protocol=recipe.protocol, preset=recipe.preset, device="cpu", **layout)
    try:
        scorer = PRMScorer(folder, config)
    except SlowthinkError as e:
        raise SlowthinkError(f"cannot train a '{config.protocol}' PRM from {folder}: {e}") from e
    base = scorer.model
    if config.protocol == "step_tag":
        columns = list(scorer.label_ids)
        task = "CAUSAL_LM"
    else:
        labels = getattr(base.config, "num_labels", 2)
        if labels != 2:
            raise SlowthinkError(f"token_cls PRM: the head has {labels} labels; train from a model with 2")
        columns = [config.good_label, 1 - config.good_label]
        task = "TOKEN_CLS"
    items = encode_items(scorer, examples, recipe.max_length)
    base.train()
    if recipe.freeze_vision:
        freeze_vision(base)
    net = add_lora(base, recipe, task) if recipe.lora else base
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer_cls = prm_trainer_class()
    trainer_cls.columns = columns
    pad = scorer.pad_id
    trainer = trainer_cls(
        model=net,
        args=training_args(recipe, out, sft=False),
        train_dataset=index_dataset(len(items)),
        data_collator=lambda rows: collate_items([items[r["index"]] for r in rows], pad),
    )
    owner = scorer.processor if scorer.processor is not None else scorer.tokenizer
    meta = {
        "config": {k: v for k, v in asdict(config).items() if k in LAYOUT_FIELDS},
        "label_token_ids": columns if config.protocol == "step_tag" else None,
        "tag_token_ids": list(getattr(scorer, "tag_ids", []) or getattr(scorer, "sep_ids", [])),
        "base_model": str(model) if model else str(folder),
        "base_folder": str(folder),
        "data": str(data),
    }

    def save(model: Any, where: Path) -> None:
        model.save_pretrained(where)
        owner.save_pretrained(where)
        (where / METADATA).write_text(json.dumps(meta, indent=2) + "\n")

    return train_and_save(
        trainer,
        kind=f"prm:{config.protocol}",
        out=out,
        base_model=folder,
        base_gguf=gguf,
        examples=len(items),
        tokens_per_epoch=sum(len(i.input_ids) for i in items),
        trained_per_epoch=sum(len(i.positions) for i in items),
        recipe=recipe,
        save=save,
    )
