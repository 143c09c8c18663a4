"""Export a trained Llama-architecture policy (SmolLM2 and kin) to GGUF for ``--engine llamacpp``.

Written with the ``gguf`` package's writer (llama.cpp's converter is not shipped with any package
installed here): the Llama hyper-parameters, the tensors renamed to llama.cpp's names (query and key
projections permuted as llama.cpp's ``convert_hf_to_gguf.py`` does), and the tokenizer. The tokenizer
is copied verbatim from a reference GGUF when one is given (``like``: the GGUF the model was trained
from; ``slowthink train sft`` records it in ``train_summary.json`` as ``base_gguf``), else built
from the folder's byte-level BPE tokenizer (``tokenizer.ggml.pre`` = ``gpt-2``: the GPT-2 split, as HF ``ByteLevel``).

Only the ``llama`` architecture (``LlamaForCausalLM``) is supported; other architectures are one
clear error. Tensor types: ``f32``, ``f16`` (default; norms stay f32) or ``q8_0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slowthink.types import SlowthinkError

DTYPES = ("f32", "f16", "q8_0")


def _permute(w: Any, n_head: int) -> Any:
    """llama.cpp's rotary layout of a query/key projection (``convert_hf_to_gguf.LlamaModel.permute``)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _copy_tokenizer(writer: Any, like: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(str(like))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), main, sub)


def _build_tokenizer(writer: Any, folder: Path) -> None:
    import gguf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    backend = getattr(tok, "backend_tokenizer", None)
    model = json.loads(backend.to_str())["model"] if backend is not None else {}
    if model.get("type") != "BPE":
        raise SlowthinkError(
            f"GGUF export builds byte-level BPE tokenizers only ({folder} has {model.get('type')}): "
            "pass the base model's GGUF as like=..."
        )
    vocab = {v: k for k, v in tok.get_vocab().items()}
    specials = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
    tokens, types = [], []
    for i in range(len(vocab)):
        tokens.append(vocab.get(i, f"[PAD{i}]"))
        types.append(gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for name, add in (
        ("bos", writer.add_bos_token_id),
        ("eos", writer.add_eos_token_id),
        ("pad", writer.add_pad_token_id),
    ):
        tid = getattr(tok, f"{name}_token_id", None)
        if tid is not None:
            add(int(tid))
    writer.add_add_bos_token(False)
    if getattr(tok, "chat_template", None):
        writer.add_chat_template(tok.chat_template)


def export_gguf(
    folder: str | Path, out: str | Path, dtype: str = "f16", like: str | Path | None = None
) -> Path:
    """Write the Llama model of the transformers ``folder`` as the GGUF file ``out``."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    folder, out = Path(folder), Path(out)
    if dtype not in DTYPES:
        raise SlowthinkError(f"GGUF export: dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise SlowthinkError(f"GGUF export: {folder} is not a transformers model folder (no config.json)")
    cfg = json.loads(cfg_file.read_text())
    if cfg.get("model_type") != "llama" or "LlamaForCausalLM" not in cfg.get(
        "architectures", ["LlamaForCausalLM"]
    ):
        raise SlowthinkError(
            f"GGUF export supports Llama causal LMs (SmolLM2, Llama); {folder} is "
            f"{cfg.get('architectures') or cfg.get('model_type')}: use llama.cpp's convert_hf_to_gguf.py"
        )
    if like is not None and not Path(like).is_file():
        raise SlowthinkError(f"GGUF export: reference GGUF not found: {like}")
    n_layer, n_head = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    hidden = cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // n_head
    rope = cfg.get("rope_parameters") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    ftype = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[dtype]

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(folder.name)
    writer.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(int(cfg["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(cfg["vocab_size"]))
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(ftype)
    if like is not None:
        _copy_tokenizer(writer, Path(like))
    else:
        _build_tokenizer(writer, folder)

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise SlowthinkError(f"GGUF export: no .safetensors weights in {folder}")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                if key == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                    continue
                w = f.get_tensor(key).float().numpy()
                if key.endswith("q_proj.weight"):
                    w = _permute(w, n_head)
                elif key.endswith("k_proj.weight"):
                    w = _permute(w, n_kv)
                name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise SlowthinkError(f"GGUF export: no llama.cpp name for tensor '{key}'")
                if dtype == "f32" or w.ndim == 1:
                    writer.add_tensor(name, w.astype(np.float32))
                elif dtype == "f16":
                    writer.add_tensor(name, w.astype(np.float16))
                else:
                    q = gguf.quants.quantize(w.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
                    writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
