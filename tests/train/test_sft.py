"""SFT on tiny random models (text, LLaVA, Qwen2-VL, Mllama): exact assistant-only masks on real
batches, a falling loss over a few steps on a repeated batch, LoRA, outputs and resume."""

from __future__ import annotations

import json
import math
import re

import pytest

from slowthink.train.data import load_sft
from slowthink.train.recipe import Recipe
from tests.train.conftest import ATOMIC_STEP, CONVERSATION, IMAGE_CONVERSATION, write_jsonl

pytestmark = pytest.mark.hf
torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from slowthink.train.sft import IGNORE, ChatEncoder, collate, load_policy, train_sft  # noqa: E402

#: A few steps at a high constant learning rate on one repeated batch: the loss must fall.
FAST = dict(learning_rate=1e-2, lr_scheduler="constant", device="cpu", save_steps=100, logging_steps=1)


def trained_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([i for i, lab in zip(ids, labels) if lab != IGNORE])


def test_text_batch_masks_everything_but_the_assistant_turn(tiny_llama_dir, data_dir):
    examples = load_sft(write_jsonl(data_dir / "sft.jsonl", [CONVERSATION, ATOMIC_STEP]))
    _, tok, proc = load_policy(tiny_llama_dir)
    enc = ChatEncoder(tok, proc, 1024)
    encoded = [enc.encode(e) for e in examples]
    batch = collate(encoded, tok.pad_token_id)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == mask.shape and ids.shape[0] == 2
    # Padding (right) is masked out of the loss and out of attention.
    assert (labels[mask == 0] == IGNORE).all() and mask[0].sum() < mask[1].sum()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for b, e in enumerate(examples):
        n = int(mask[b].sum())
        got = [int(x) for x in labels[b, :n]]
        want_text = e.messages[-1].content
        # exactly the answer's tokens and the end-of-turn token after it are trained
        assert trained_text(tok, ids[b, :n].tolist(), got) == want_text + "<|im_end|>"
        assert got[-2] == im_end or got[-1] == IGNORE  # the closing "\n" after <|im_end|> is not trained
        full = tok.decode(ids[b, :n].tolist())
        assert full.startswith("<|im_start|>user\n")  # the user turn is there, just masked
        assert (
            "<|im_start|>assistant\n" in full
            and tok.decode([x for x, lab in zip(ids[b, :n].tolist(), got) if lab == IGNORE]).count(
                "assistant"
            )
            == 1
        )


@pytest.mark.parametrize("vlm", ["tiny_llava_dir", "tiny_qwen2vl_dir", "tiny_mllama_dir"])
def test_vlm_masks_image_tokens_and_matches_the_processor(vlm, request, data_dir):
    folder = request.getfixturevalue(vlm)
    (example,) = load_sft(write_jsonl(data_dir / "sft.jsonl", [IMAGE_CONVERSATION]))
    _, tok, proc = load_policy(folder)
    e = ChatEncoder(tok, proc, 1024).encode(example)
    assert trained_text(tok, e.input_ids, e.labels) == "<CONCLUSION> B </CONCLUSION><|im_end|>"
    image_id = tok.convert_tokens_to_ids(proc.image_token)
    positions = [i for i, t in enumerate(e.input_ids) if t == image_id]
    assert positions and all(e.labels[i] == IGNORE for i in positions)
    # Piecewise tokenization gives what the processor gives on the whole text (ids and per-token inputs).
    from PIL import Image

    token = re.escape(proc.image_token)
    text = re.sub(f"(?:{token})+", proc.image_token, tok.decode(e.input_ids))  # one placeholder per image
    full = proc(
        text=[text],
        images=[[Image.open(data_dir / "red.png").convert("RGB")]],
        add_special_tokens=False,
        return_tensors="pt",
    )
    assert full["input_ids"][0].tolist() == e.input_ids
    for k, v in e.per_token.items():
        assert torch.equal(full[k], v), k


@pytest.mark.parametrize(
    ("model", "records"),
    [
        ("tiny_llama_dir", [CONVERSATION, ATOMIC_STEP]),
        ("tiny_llava_dir", [IMAGE_CONVERSATION, {**IMAGE_CONVERSATION, "id": "conv-img-2"}]),
        ("tiny_qwen2vl_dir", [IMAGE_CONVERSATION]),
        ("tiny_mllama_dir", [IMAGE_CONVERSATION]),
    ],
)
def test_loss_is_finite_and_falls_on_a_repeated_batch(model, records, request, data_dir, tmp_path):
    folder = request.getfixturevalue(model)
    data = write_jsonl(data_dir / "sft.jsonl", records)
    out = tmp_path / "out"
    result = train_sft(data, str(folder), out, Recipe(max_steps=4, batch_size=len(records), **FAST))
    losses = [h["loss"] for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    assert result.steps == 4 and result.examples == len(records) and result.trained_tokens > 0
    assert (out / "config.json").is_file() and (out / "loss.png").stat().st_size > 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert {"examples", "tokens", "steps", "wall_s", "final_loss"} <= set(summary)


def test_lora_trains_adapters_and_saves_a_merged_model(tiny_llama_dir, data_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    data = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION])
    out = tmp_path / "lora"
    result = train_sft(data, str(tiny_llama_dir), out, Recipe(max_steps=4, lora=True, lora_r=4, **FAST))
    assert result.lora and result.final_loss < result.first_loss
    merged = AutoModelForCausalLM.from_pretrained(out)  # a plain model: no adapter left to load
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    w, w0 = merged.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(w, w0)
    assert torch.equal(merged.model.embed_tokens.weight, base.model.embed_tokens.weight)  # not a LoRA target


def test_images_on_a_text_model_are_one_clear_error(tiny_llama_dir, data_dir, tmp_path):
    from slowthink.types import SlowthinkError

    data = write_jsonl(data_dir / "sft.jsonl", [IMAGE_CONVERSATION])
    with pytest.raises(SlowthinkError, match="text-only model"):
        train_sft(data, str(tiny_llama_dir), tmp_path / "o", Recipe(max_steps=1, **FAST))
