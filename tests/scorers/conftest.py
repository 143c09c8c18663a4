"""Fixtures of the scorer tests: tiny random PRMs built offline (2 layers, hidden 32).

The tokenizer is a byte-level BPE trained with ``tokenizers`` on a few sentences; weights are random
(seeded), so scores are meaningless numbers in (0, 1): tests assert shapes, ranges, batching,
caching and determinism, never quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = [
    "Tom has 3 apples and buys 5 more. How many apples does he have now?",
    "Step 1: Tom starts with 3 apples. ки\nStep 2: He buys 5 more, so 3 + 5 = 8. ки",
    "To sum up, the final answer is: 8 ки",
    "A pen costs 4 dollars. Step 1: 6 pens cost 6 * 4 = 24 dollars. + - + -",
    "Step 2: Her change is 30 - 24 = 6 dollars.<extra_0>",
]


# Qwen2.5-style ChatML: a system turn when given, and the assistant turn's text as is.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(extra_specials: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<bos>", "<eos>", "<pad>", "<extra_0>", *extra_specials]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", model_max_length=256
    )


def _config(tokenizer, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **kw,
    )


def build_tiny_prm(path: Path, protocol: str, chat: bool = False) -> Path:
    """A tiny random PRM folder: ``step_tag`` -> LlamaForCausalLM, ``token_cls`` ->
    LlamaForTokenClassification with 2 labels; ``chat``: a ChatML chat template (Qwen-style, its
    ``<|im_start|>``/``<|im_end|>`` special tokens) like Qwen2.5-Math-PRM's tokenizer."""
    import torch
    from transformers import LlamaForCausalLM, LlamaForTokenClassification

    tokenizer = _tokenizer(("<|im_start|>", "<|im_end|>") if chat else ())
    if chat:
        tokenizer.chat_template = CHATML
    torch.manual_seed(1234)
    if protocol == "step_tag":
        model = LlamaForCausalLM(_config(tokenizer))
    else:
        model = LlamaForTokenClassification(_config(tokenizer, num_labels=2))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_step_tag_prm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_prm(tmp_path_factory.mktemp("prm_step_tag"), "step_tag")


@pytest.fixture(scope="session")
def tiny_token_cls_prm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_prm(tmp_path_factory.mktemp("prm_token_cls"), "token_cls")


@pytest.fixture(scope="session")
def tiny_chat_prm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token-classification PRM whose tokenizer has a ChatML template (Qwen2.5-Math-PRM-like)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_prm(tmp_path_factory.mktemp("prm_chat"), "token_cls", chat=True)
