"""``slowthink train sft``: supervised fine-tuning on the assistant's tokens only (TRL ``SFTTrainer``).

An example is rendered with the model's own chat template, then tokenized piece by piece so that
the trained span is exact whatever the tokenizer merges: the template's text around each assistant
message (system, user, role headers, image tokens) is masked (label -100); the assistant text and
the end-of-turn token that closes it (the first token after it, when it is a special token) are
trained. For a VLM the pieces holding images go through the processor (image tokens expanded, pixel
inputs); per-token inputs of a processor (Mllama's cross-attention mask) are extended over the whole
sequence. Padding is masked too.

TRL's ``SFTTrainer`` runs the training loop (its own dataset preparation is skipped: the examples
are tokenized here, labels included, because TRL's assistant-only masking needs ``{% generation %}``
markers that most VLM templates lack).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.engines.hf_load import load_processor, quiet_transformers
from slowthink.images import open_image
from slowthink.train.data import ChatExample, load_sft
from slowthink.train.recipe import Recipe
from slowthink.train.run import (
    RunResult,
    add_lora,
    freeze_vision,
    index_dataset,
    is_vlm_folder,
    model_folder,
    require_training,
    train_and_save,
    training_args,
)
from slowthink.types import SlowthinkError

IGNORE = -100
_MARK = "\x00slowthink-assistant-{}\x00"


@dataclass
class Encoded:
    """One tokenized example: ids, labels (-100 = no loss) and a VLM's extra inputs."""

    input_ids: list[int]
    labels: list[int]
    extra: dict[str, Any] = field(default_factory=dict)
    """Processor outputs besides the ids (pixel values, image sizes): concatenated along dim 0 in a batch."""
    per_token: dict[str, Any] = field(default_factory=dict)
    """Processor outputs with one row per token, shaped ``(1, len(input_ids), ...)``: padded in a batch."""


class ChatEncoder:
    """Renders :class:`ChatExample` s with a model's chat template and tokenizes them with masks."""

    def __init__(self, tokenizer: Any, processor: Any | None, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.processor = processor
        self.max_length = max_length
        if not (getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)):
            raise SlowthinkError("the model has no chat template: add chat_template.jinja to its folder")
        self.specials = set(getattr(tokenizer, "all_special_ids", []) or [])

    def _render(self, example: ChatExample) -> list[str]:
        """The conversation as text, split at the assistant messages: [before, a1, between, a2, ..., after]."""
        vlm = self.processor is not None
        messages = []
        answers = []
        for m in example.messages:
            content: Any = m.content
            if m.role == "assistant":
                answers.append(m.content)
                content = _MARK.format(len(answers) - 1)
            if vlm:
                content = [{"type": "image"} for _ in m.images] + [{"type": "text", "text": content}]
            messages.append({"role": m.role, "content": content})
        owner = self.processor if self.processor is not None else self.tokenizer
        try:
            text = owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        except Exception as e:  # jinja2 errors: a template that rejects the roles given
            raise SlowthinkError(
                f"example {example.id}: the chat template failed ({type(e).__name__}: {e})"
            ) from e
        pieces: list[str] = []
        for i, answer in enumerate(answers):
            mark = _MARK.format(i)
            if text.count(mark) != 1:
                raise SlowthinkError(
                    f"example {example.id}: the chat template rewrites assistant turns; cannot mask them"
                )
            head, _, text = text.partition(mark)
            pieces += [head, answer]
        return [*pieces, text]

    def encode(self, example: ChatExample) -> Encoded:
        pieces = self._render(example)
        images = [open_image(p) for p in example.images] if self.processor is not None else []
        token = getattr(self.processor, "image_token", None) or "<image>"
        ids: list[int] = []
        labels: list[int] = []
        extra: dict[str, list[Any]] = {}
        per_token: dict[str, Any] = {}
        close_next = False
        last = len(pieces) // 2 - 1
        for i, text in enumerate(pieces):
            trained = i % 2 == 1
            if trained and i // 2 == last and example.prefix:
                head, text = text[: len(example.prefix)], text[len(example.prefix) :]
                part = self.tokenizer.encode(head, add_special_tokens=False)
                ids += part
                labels += [IGNORE] * len(part)
            n_img = text.count(token) if images and not trained else 0
            if n_img:
                mine, images = images[:n_img], images[n_img:]
                enc = self.processor(
                    text=[text], images=[mine], return_tensors="pt", add_special_tokens=False
                )
                part = enc["input_ids"][0].tolist()
                for k, v in enc.items():
                    if k in ("input_ids", "attention_mask"):
                        continue
                    if hasattr(v, "dim") and v.dim() >= 2 and v.shape[0] == 1 and v.shape[1] == len(part):
                        per_token.setdefault(k, []).append((len(ids), v))
                    else:
                        extra.setdefault(k, []).append(v)
            else:
                part = self.tokenizer.encode(text, add_special_tokens=False) if text else []
            mask = list(part) if trained else [IGNORE] * len(part)
            if close_next and part and part[0] in self.specials:
                mask[0] = part[0]  # the end-of-turn token closing the assistant message is learnt
            close_next = trained
            ids += part
            labels += mask
        if images:
            raise SlowthinkError(
                f"example {example.id}: {len(images)} image(s) left over: the chat template wrote fewer image "
                f"tokens ('{token}') than the example has images"
            )
        ids, labels = ids[: self.max_length], labels[: self.max_length]
        if all(label == IGNORE for label in labels):
            raise SlowthinkError(
                f"example {example.id}: no assistant token left to train (max_length {self.max_length} too short?)"
            )
        return Encoded(
            ids,
            labels,
            extra={k: _cat(v) for k, v in extra.items()},
            per_token={k: _spread(spans, len(ids)) for k, spans in per_token.items()},
        )


def _cat(values: Sequence[Any]) -> Any:
    import torch

    return values[0] if len(values) == 1 else torch.cat(list(values), dim=0)


def _spread(spans: Sequence[tuple[int, Any]], length: int) -> Any:
    """A per-token processor output over the whole sequence: each piece's rows where its tokens
    are, zeros before the first piece, and the last row of a piece repeated until the next one
    (Mllama: text after an image keeps attending to it)."""
    import torch

    first = spans[0][1]
    out = torch.zeros((1, length, *first.shape[2:]), dtype=first.dtype)
    bounds = [*(s for s, _ in spans[1:]), length]
    for (start, value), end in zip(spans, bounds):
        n = min(value.shape[1], length - start)
        if n <= 0:
            break
        out[:, start : start + n] = value[:, :n]
        if start + n < end:
            out[:, start + n : end] = value[:, n - 1 : n] if value.dim() > 2 else 0
    return out


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded ids, attention mask and labels (padding masked), the extra inputs concatenated."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for b, e in enumerate(batch):
        n = len(e.input_ids)
        ids[b, :n] = torch.tensor(e.input_ids)
        labels[b, :n] = torch.tensor(e.labels)
        mask[b, :n] = 1
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    for k in sorted({k for e in batch for k in e.per_token}):
        if any(k not in e.per_token for e in batch):
            raise SlowthinkError(f"a batch mixes examples with and without images ('{k}'): use batch_size 1")
        rows = []
        for e in batch:
            v = e.per_token[k]
            rows.append(
                torch.cat([v, torch.zeros((1, width - v.shape[1], *v.shape[2:]), dtype=v.dtype)], dim=1)
            )
        out[k] = torch.cat(rows, dim=0)
    for k in sorted({k for e in batch for k in e.extra}):
        try:
            out[k] = torch.cat([e.extra[k] for e in batch if k in e.extra], dim=0)
        except RuntimeError as e:
            raise SlowthinkError(f"cannot batch the processor's '{k}' ({e}): use batch_size 1") from e
    return out


def load_policy(folder: Path) -> tuple[Any, Any, Any]:
    """(model, tokenizer, processor or None) of a text LM or a VLM folder, for training."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

    vlm = is_vlm_folder(folder)
    with quiet_transformers():
        try:
            if vlm:
                processor = load_processor(folder)
                tokenizer = processor.tokenizer
                model = AutoModelForImageTextToText.from_pretrained(str(folder))
            else:
                processor = None
                tokenizer = AutoTokenizer.from_pretrained(str(folder))
                model = AutoModelForCausalLM.from_pretrained(str(folder))
        except (OSError, ValueError, KeyError) as e:
            raise SlowthinkError(f"cannot load {folder} for training: {e}") from e
    return model, tokenizer, processor


def train_sft(data: str | Path, model: str | None, out: str | Path, recipe: Recipe) -> RunResult:
    """Fine-tune ``model`` (folder, GGUF, or None: the embedded SmolLM2) on the SFT file ``data``."""
    require_training()
    from trl import SFTTrainer

    examples = load_sft(data)
    folder, gguf = model_folder(model)
    policy, tokenizer, processor = load_policy(folder)
    if any(e.images for e in examples) and processor is None:
        raise SlowthinkError(
            f"the data has images but {folder} is a text-only model: pass a VLM, or drop the images"
        )
    encoder = ChatEncoder(tokenizer, processor, recipe.max_length)
    encoded = [encoder.encode(e) for e in examples]
    pad = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
    if recipe.freeze_vision:
        freeze_vision(policy)
    if recipe.lora:
        policy = add_lora(policy, recipe, "CAUSAL_LM")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = SFTTrainer(
        model=policy,
        args=training_args(recipe, out, sft=True),
        train_dataset=index_dataset(len(encoded)),
        data_collator=lambda rows: collate([encoded[r["index"]] for r in rows], pad),
        processing_class=processor if processor is not None else tokenizer,
    )

    def save(model: Any, where: Path) -> None:
        model.save_pretrained(where)
        (processor if processor is not None else tokenizer).save_pretrained(where)

    return train_and_save(
        trainer,
        kind="sft",
        out=out,
        base_model=folder,
        base_gguf=gguf,
        examples=len(encoded),
        tokens_per_epoch=sum(len(e.input_ids) for e in encoded),
        trained_per_epoch=sum(sum(1 for x in e.labels if x != IGNORE) for e in encoded),
        recipe=recipe,
        save=save,
    )
