"""``hf``: transformers models in process, text LLMs and VLMs (LLaVA-style, Qwen2-VL-style, ...).

Spec strings::

    hf                         the embedded SmolLM2-135M-Instruct GGUF (dequantised once, cached)
    hf:/path/to/folder         a transformers folder (config.json, weights, tokenizer/processor)
    hf:/path/to/model.gguf     a GGUF file, loaded by transformers (``gguf_file=``)
    hf:/dir#model.gguf         the same, folder and file apart

How a call runs (:meth:`HFEngine.generate`):

1. Every request is rendered with the chat template (``add_generation_prompt=True``) and
   ``request.prefix`` is appended byte for byte. Identical prompts (same text, same images) are
   encoded once; every image is opened once per call.
2. Requests become *rows*, one per sample (``n`` rows for ``n`` samples). Rows run in batches of
   at most ``max_batch_size`` through one ``model.generate`` each, left-padded.
3. **Shared prefill** (``share_prefill``, models with ordinary 1-D positions): the rows of one
   conversation (same messages and images; siblings of ``n > 1``, or beams with different
   prefixes) share their longest common token prefix. It is prefilled once per batch, images
   included, so the vision tower sees each problem's image once per batch, and the KV cache is
   copied to the rows, which then prefill only their own suffix. Models with multimodal rotary
   positions (Qwen2-VL family) prefill every row in full (the image is still preprocessed once).
4. Each row samples with its own temperature / top-p and its own seeded RNG (see
   :mod:`slowthink.engines._hf_decode`) and stops at its own stop strings, EOS or budget.

Seeds: sample ``i`` of a request with ``seed=s`` uses seed ``s + i`` (as the ``llamacpp``
engine), so ``n=4, seed=7`` gives 4 different samples, the first equal to ``n=1, seed=7``. A row's
random draws never depend on the other rows, so the same request gives the same completion
alone or in any batch *as long as its logits are the same*. With float32 (the CPU default) batch
composition changes padding and matrix shapes, which moves logits by ~1e-6: outputs then match
except in the rare case that this flips a choice (a near-tie at temperature 0, or a draw within
1e-6 of a bucket edge). The same batch with the same seeds is bitwise reproducible. Requests
without a seed draw one from the engine's ``seed`` option (random when that is ``None``).

Logprobs are the model's raw next-token distribution (log-softmax of the logits at temperature
1, before top-p / top-k / min-p), like the ``llamacpp`` engine. ``top_logprobs`` maps token text
(``tokenizer.decode([id])``) to logprob, likeliest first.

``prompt_tokens`` counts the prompt without padding (image placeholder tokens included);
``generated_tokens`` counts the tokens generated up to and including the one that completed the
stop string, or the EOS token.

torch and transformers are imported when an engine is built, never at module import.
"""

from __future__ import annotations

import copy
import inspect
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from slowthink.engines.base import apply_stop, check_images, error_completions
from slowthink.engines.hf_load import (
    DTYPES,
    gguf_to_hf_folder,
    load_processor,
    pick_device,
    pick_dtype,
    quiet_transformers,
    require_transformers,
    resolve_source,
)
from slowthink.images import open_image
from slowthink.types import Completion, Message, Request, SlowthinkError

#: Keys of a processor's output that hold one value per prompt token (padded like ``input_ids``).
PER_TOKEN_KEYS = ("token_type_ids", "mm_token_type_ids", "moe_mm_token_type_ids")
#: Context length when neither the option nor the model config gives one.
DEFAULT_CONTEXT = 4096
#: Options other engines take that mean nothing here (accepted so one option set fits all engines).
IGNORED_OPTIONS = ("n_batch",)
#: Option aliases shared with other engines.
OPTION_ALIASES = {"n_ctx": "max_context"}


@dataclass
class HFEngineConfig:
    """Options of the ``hf`` engine (``load_engine("hf:...", **options)``)."""

    model: str | None = None
    """Model folder or .gguf file; ``None`` = the embedded SmolLM2-135M-Instruct GGUF."""
    gguf_file: str | None = None
    """GGUF file name inside ``model`` (the ``#fragment`` of the spec)."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    dtype: str = "auto"
    """``auto`` (bfloat16/float16 on CUDA, float32 on CPU), ``float32``, ``bfloat16`` or ``float16``."""
    max_batch_size: int = 16
    """Most sequences (rows: requests x n) in one ``generate`` call; bigger calls are chunked."""
    max_context: int | None = None
    """Context length in tokens (prompt + generated); ``None`` = the model config's ``max_position_embeddings``."""
    seed: int | None = None
    """Seed for requests that have none; ``None`` = fresh randomness."""
    share_prefill: bool = True
    """Prefill the common prompt of a conversation once per batch and copy its KV cache to the rows."""
    top_k: int = 0
    """Sample only among the k likeliest tokens (0 = off); applies to every sampled request."""
    min_p: float = 0.0
    """Drop tokens with probability below ``min_p`` times the likeliest's (0 = off)."""
    convert_gguf: bool = True
    """Dequantise a GGUF once into a transformers folder under the cache dir (fast later loads)."""
    cache_dir: str | None = None
    """Where converted GGUFs go; ``None`` = ``$SLOWTHINK_CACHE_DIR`` or ``<repo>/.cache/slowthink``."""
    trust_remote_code: bool = False
    """Allow model folders that ship their own Python code."""
    n_threads: int | None = None
    """torch CPU threads (``torch.set_num_threads``, process-wide); ``None`` = leave torch's setting."""
    verbose: bool = False
    """Show transformers' progress bars and warnings while loading."""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_context is not None and self.max_context < 2:
            raise ValueError(f"max_context must be >= 2 or None, got {self.max_context}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")


#: Options a user may set (``hf:PATH#max_batch_size=8``, ``--engine-option dtype=float32``).
USER_OPTIONS: frozenset[str] = frozenset(
    ({f.name for f in fields(HFEngineConfig)} - {"model", "gguf_file"})
    | set(OPTION_ALIASES)
    | set(IGNORED_OPTIONS)
)


@dataclass
class _Prompt:
    """One distinct (prompt text, images) of a call, encoded once."""

    text: str
    chat: str
    image_key: tuple
    ids: list[int] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    token_extras: dict[str, list[int]] = field(default_factory=dict)
    last_mm: int = -1
    error: str | None = None


@dataclass
class _Group:
    """Prompts that share a conversation (same chat part and images): one prefill."""

    prompts: list[int]
    common: int = 0


class HFEngine:
    """transformers engine for text LLMs and VLMs. See the module docstring for the details."""

    name = "hf"

    def __init__(self, model: str | Path | None = None, **options: Any) -> None:
        require_transformers()
        self.config = HFEngineConfig(model=None if model is None else str(model), **options)
        self._load()
        self._rng = random.Random(self.config.seed)
        self.calls = 0

    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> HFEngine:
        valid = {f.name for f in fields(HFEngineConfig)} - {"model", "gguf_file"}
        opts: dict[str, Any] = {}
        for key, value in options.items():
            key = OPTION_ALIASES.get(key, key)
            if key in IGNORED_OPTIONS:
                continue
            if key not in valid:
                raise SlowthinkError(
                    f"engine 'hf' has no option '{key}': valid options are {', '.join(sorted(valid))}"
                )
            opts[key] = value
        if fragment:
            opts["gguf_file"] = fragment
        return cls(target, **opts)

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, GenerationConfig

        cfg = self.config
        if cfg.n_threads:
            torch.set_num_threads(cfg.n_threads)
        folder, gguf = resolve_source(cfg.model, cfg.gguf_file)
        load_kw: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
        if gguf is not None and cfg.convert_gguf:
            folder = gguf_to_hf_folder(
                folder, gguf, Path(cfg.cache_dir) if cfg.cache_dir else None, cfg.verbose
            )
            gguf = None
        if gguf is not None:
            load_kw["gguf_file"] = gguf
        self.model_path = folder if gguf is None else folder / gguf
        self.device = pick_device(cfg.device)
        dtype = pick_dtype(cfg.dtype, self.device)
        with quiet_transformers(cfg.verbose):
            try:
                hf_config = AutoConfig.from_pretrained(str(folder), **load_kw)
            except Exception as e:
                raise SlowthinkError(
                    f"engine 'hf': cannot read the model config in {self.model_path}: {_first_line(e)}"
                ) from e
            self.is_vlm = getattr(hf_config, "vision_config", None) is not None
            try:
                if self.is_vlm:
                    from transformers import AutoModelForImageTextToText as AutoModel

                    self.processor = load_processor(folder, **load_kw)
                    if getattr(self.processor, "image_processor", None) is None:
                        raise SlowthinkError(
                            f"engine 'hf': {self.model_path} is a vision model but has no image processor "
                            "(add its preprocessor_config.json / processor_config.json to the folder)"
                        )
                    self.tokenizer = self.processor.tokenizer
                else:
                    from transformers import AutoModelForCausalLM as AutoModel
                    from transformers import AutoTokenizer

                    self.processor = None
                    self.tokenizer = AutoTokenizer.from_pretrained(str(folder), **load_kw)
                placement = {} if self.device == "cpu" else {"device_map": self.device}
                self.model = AutoModel.from_pretrained(str(folder), dtype=dtype, **placement, **load_kw)
            except SlowthinkError:
                raise
            except Exception as e:
                raise SlowthinkError(
                    f"engine 'hf': could not load {self.model_path} with transformers: {_first_line(e)}"
                ) from e
        if not placement:
            self.model.to(self.device)
        self.model.eval()
        self._template_owner = self.processor if self.is_vlm else self.tokenizer
        if not getattr(self._template_owner, "chat_template", None) and not getattr(
            self.tokenizer, "chat_template", None
        ):
            raise SlowthinkError(
                f"engine 'hf': {self.model_path} has no chat template: use an instruct/chat model, or add a "
                "chat_template.jinja to the folder"
            )
        self.supports_images = bool(
            self.is_vlm and getattr(self.processor, "image_processor", None) is not None
        )

        tok = self.tokenizer
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else tok.eos_token_id
        eos_list = [eos] if isinstance(eos, int) else list(eos or [])
        if tok.eos_token_id is not None and tok.eos_token_id not in eos_list:
            eos_list.append(tok.eos_token_id)
        self.eos_ids = set(eos_list)
        pad = tok.pad_token_id if tok.pad_token_id is not None else gen.pad_token_id
        if pad is None:
            pad = eos_list[0] if eos_list else 0
        self.pad_id = int(pad)
        # A neutral generation config: the model's own (temperature, repetition penalty, ...) must not
        # add logits processors in front of the engine's sampler.
        self.model.generation_config = GenerationConfig(
            bos_token_id=gen.bos_token_id, eos_token_id=eos_list or None, pad_token_id=self.pad_id
        )
        text_cfg = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
        self.max_context = (
            cfg.max_context or getattr(text_cfg, "max_position_embeddings", None) or DEFAULT_CONTEXT
        )
        self._mm_ids = {
            int(v)
            for obj in (hf_config, self.processor)
            for name in ("image_token_id", "image_token_index", "video_token_id")
            if obj is not None and isinstance(v := getattr(obj, name, None), int)
        }
        inner = getattr(self.model, "model", None)
        text_rope = (
            getattr(text_cfg, "rope_parameters", None) or getattr(text_cfg, "rope_scaling", None) or {}
        )
        mrope = (
            hasattr(self.model, "get_rope_index")
            or hasattr(inner, "get_rope_index")
            or (isinstance(text_rope, dict) and "mrope_section" in text_rope)
        )
        forward_params = inspect.signature(self.model.forward).parameters
        self._logits_to_keep = "logits_to_keep" in forward_params
        self._can_share = cfg.share_prefill and not mrope and "position_ids" in forward_params

    # -- prompts --------------------------------------------------------------------------------
    def _chat(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        if not self.is_vlm:
            return [{"role": m.role, "content": m.content} for m in messages]
        out = []
        for m in messages:
            parts: list[dict[str, Any]] = [{"type": "image"} for _ in m.images]
            parts.append({"type": "text", "text": m.content})
            out.append({"role": m.role, "content": parts})
        return out

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The chat template applied to ``messages`` with the assistant turn opened."""
        owner = (
            self._template_owner if getattr(self._template_owner, "chat_template", None) else self.tokenizer
        )
        return owner.apply_chat_template(self._chat(messages), add_generation_prompt=True, tokenize=False)

    def render(self, request: Request) -> str:
        """The prompt text the model continues: the rendered chat plus ``request.prefix``, byte for byte."""
        return self.render_chat(request.messages) + request.prefix

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, prompt: _Prompt, images: list[Any]) -> None:
        if not self.is_vlm:
            prompt.ids = self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
            return
        # As ProcessorMixin.apply_chat_template(tokenize=True): special tokens are added unless the
        # template already starts with BOS (LLaVA-1.5 templates rely on the processor adding it).
        bos = self.tokenizer.bos_token
        enc = self.processor(
            text=[prompt.text],
            images=[images] if images else None,
            return_tensors="pt",
            add_special_tokens=not (bos and prompt.text.startswith(bos)),
        )
        prompt.ids = enc["input_ids"][0].tolist()
        for key, value in enc.items():
            if key in ("input_ids", "attention_mask"):
                continue
            if key in PER_TOKEN_KEYS:
                prompt.token_extras[key] = value[0].tolist()
            elif hasattr(value, "to"):
                prompt.extras[key] = value
        mm = [i for i, t in enumerate(prompt.ids) if t in self._mm_ids]
        prompt.last_mm = mm[-1] if mm else -1

    def _prepare(
        self, requests: Sequence[Request]
    ) -> tuple[list[_Prompt], list[int | None], list[str | None]]:
        """Render and encode each distinct prompt once. Returns prompts, request -> prompt, request errors."""
        prompts: list[_Prompt] = []
        by_key: dict[tuple, int] = {}
        of_request: list[int | None] = []
        errors: list[str | None] = []
        opened: dict[Any, Any] = {}
        for i, req in enumerate(requests):
            try:
                chat = self.render_chat(req.messages)
            except Exception as e:
                of_request.append(None)
                errors.append(f"{_who(i, req)}: the chat template rejected the messages: {_first_line(e)}")
                continue
            image_key = tuple(_image_id(img) for img in req.images)
            key = (chat + req.prefix, image_key)
            if key not in by_key:
                prompt = _Prompt(text=chat + req.prefix, chat=chat, image_key=image_key)
                try:
                    for k, img in zip(image_key, req.images):
                        if k not in opened:
                            opened[k] = open_image(img)  # once per call
                    self._encode(prompt, [opened[k] for k in image_key])
                    if len(prompt.ids) >= self.max_context:
                        prompt.error = (
                            f"prompt of {len(prompt.ids)} tokens does not fit the context of {self.max_context} "
                            "tokens (shorten the question or prefix, or raise max_context if the model allows)"
                        )
                except SlowthinkError as e:  # an image that cannot be read
                    prompt.error = str(e)
                except Exception as e:
                    prompt.error = f"could not encode the prompt: {_first_line(e)}"
                by_key[key] = len(prompts)
                prompts.append(prompt)
            p = by_key[key]
            of_request.append(p)
            errors.append(f"{_who(i, req)}: {prompts[p].error}" if prompts[p].error else None)
        return prompts, of_request, errors

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        from slowthink.engines._hf_decode import RowSpec

        check_images(self.name, self.supports_images, requests)
        self.calls += 1
        prompts, of_request, errors = self._prepare(requests)
        out: list[list[Completion] | None] = [None] * len(requests)
        rows: list[tuple[RowSpec, int]] = []  # (row, prompt index)
        for i, req in enumerate(requests):
            if errors[i] is not None:
                out[i] = error_completions(req, errors[i])
                continue
            p = of_request[i]
            assert p is not None
            base = req.seed if req.seed is not None else self._rng.getrandbits(62)
            budget = min(req.max_tokens, self.max_context - len(prompts[p].ids))
            for j in range(req.n):
                spec = RowSpec(
                    request=i,
                    sample=j,
                    temperature=req.temperature,
                    top_p=req.top_p,
                    seed=base + j,
                    max_new=budget,
                    stops=[s for s in req.stop if s],
                    logprobs=req.logprobs,
                    top_logprobs=req.top_logprobs,
                )
                rows.append((spec, p))
        results: dict[tuple[int, int], Completion] = {}
        for chunk in self._chunks(prompts, rows):
            self._run_isolated(requests, prompts, chunk, results)
        for i, req in enumerate(requests):
            if out[i] is None:
                out[i] = [results[(i, j)] for j in range(req.n)]
        return [o for o in out if o is not None]

    def _chunks(self, prompts: list[_Prompt], rows: list[tuple[Any, int]]) -> list[list[tuple[Any, int]]]:
        """Rows ordered by conversation then prompt, cut into batches of ``max_batch_size``."""
        order = {}
        for _, p in rows:
            order.setdefault((prompts[p].chat, prompts[p].image_key), len(order))
        rows = sorted(rows, key=lambda r: (order[(prompts[r[1]].chat, prompts[r[1]].image_key)], r[1]))
        size = self.config.max_batch_size
        return [rows[k : k + size] for k in range(0, len(rows), size)]

    def _run_isolated(
        self,
        requests: Sequence[Request],
        prompts: list[_Prompt],
        chunk: list[tuple[Any, int]],
        results: dict[tuple[int, int], Completion],
    ) -> None:
        """Run a batch; if it fails, run its requests one by one so a failure stays with its request."""
        try:
            results.update(self._run_chunk(prompts, chunk))
            return
        except Exception as e:
            by_request: dict[int, list[tuple[Any, int]]] = {}
            for row in chunk:
                by_request.setdefault(row[0].request, []).append(row)
            if len(by_request) == 1:
                ((i, part),) = by_request.items()
                msg = (
                    f"{_who(i, requests[i])}: generation failed: {_first_line(e)} "
                    "(if out of memory, lower max_batch_size, n or max_tokens)"
                )
                for spec, _ in part:
                    results[(i, spec.sample)] = Completion(text="", finish_reason="error", error=msg)
                return
        for part in by_request.values():
            self._run_isolated(requests, prompts, part, results)

    def _run_chunk(
        self, prompts: list[_Prompt], chunk: list[tuple[Any, int]]
    ) -> dict[tuple[int, int], Completion]:
        import torch

        specs = [spec for spec, _ in chunk]
        row_prompt = [p for _, p in chunk]
        with torch.no_grad():
            batch = None
            if self._can_share:
                try:
                    batch = self._shared_batch(prompts, row_prompt)
                except (AttributeError, TypeError, NotImplementedError) as e:
                    # a model or transformers version without the cache API this needs
                    warnings.warn(
                        f"hf: shared prefill is not supported here ({_first_line(e)}); prefilling every row in full",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self._can_share = False
            if batch is None:
                batch = self._full_batch(prompts, row_prompt)
            return self._decode(batch, specs, prompts, row_prompt)

    # -- batches --------------------------------------------------------------------------------
    def _groups(self, prompts: list[_Prompt], used: list[int]) -> list[_Group]:
        groups: dict[tuple, _Group] = {}
        for p in used:
            key = (prompts[p].chat, prompts[p].image_key)
            groups.setdefault(key, _Group(prompts=[])).prompts.append(p)
        out: list[_Group] = []
        for g in groups.values():
            seqs = [prompts[p].ids for p in g.prompts]
            common = min(_common_prefix(seqs), min(len(s) for s in seqs) - 1)
            if max(prompts[p].last_mm for p in g.prompts) >= common:
                # The images must lie in the shared part: prefill these prompts apart.
                out.extend(_Group(prompts=[p], common=len(prompts[p].ids) - 1) for p in g.prompts)
            else:
                g.common = common
                out.append(g)
        return out

    def _shared_batch(self, prompts: list[_Prompt], row_prompt: list[int]) -> dict[str, Any] | None:
        """Prefill each group's common prefix once; the rows continue from a copy of its KV cache."""
        import torch

        used = list(dict.fromkeys(row_prompt))
        groups = [g for g in self._groups(prompts, used) if g.common > 0]
        group_of = {p: gi for gi, g in enumerate(groups) for p in g.prompts}
        if len(group_of) != len(used):
            return None  # a one-token prompt: nothing to share
        cmax = max(g.common for g in groups)
        dev = self.device
        ids, mask, tok_extras = [], [], {k: [] for k in self._token_extra_keys(prompts, used)}
        extras: dict[str, list[Any]] = {}
        for g in groups:
            first = prompts[g.prompts[0]]
            pad = cmax - g.common
            ids.append([self.pad_id] * pad + first.ids[: g.common])
            mask.append([0] * pad + [1] * g.common)
            for k in tok_extras:
                tok_extras[k].append([0] * pad + first.token_extras.get(k, [0] * len(first.ids))[: g.common])
            for k, v in first.extras.items():
                extras.setdefault(k, []).append(v)
        kw: dict[str, Any] = {k: torch.cat(v).to(dev) for k, v in extras.items()}
        kw.update({k: torch.tensor(v, device=dev) for k, v in tok_extras.items()})
        ids_t = torch.tensor(ids, device=dev)
        mask_t = torch.tensor(mask, device=dev)
        pos = (mask_t.cumsum(-1) - 1).clamp_(min=0)
        if self._logits_to_keep:
            kw["logits_to_keep"] = 1
        if "pixel_values" in kw:
            kw["pixel_values"] = kw["pixel_values"].to(self.model.dtype)
        out = self.model(
            input_ids=ids_t, attention_mask=mask_t, position_ids=pos, use_cache=True, return_dict=True, **kw
        )
        cache = out.past_key_values
        if not _plain_dynamic_cache(cache):
            self._can_share = False  # sliding-window / hybrid caches: prefill rows in full from now on
            return None
        row_group = [group_of[p] for p in row_prompt]
        cache.batch_select_indices(torch.tensor(row_group, device=dev))
        suffixes = [prompts[p].ids[groups[group_of[p]].common :] for p in row_prompt]
        smax = max(len(s) for s in suffixes)
        full_ids, full_mask = [], []
        for p, s in zip(row_prompt, suffixes):
            g = groups[group_of[p]]
            pad = cmax - g.common
            full_ids.append(
                [self.pad_id] * pad + prompts[p].ids[: g.common] + [self.pad_id] * (smax - len(s)) + s
            )
            full_mask.append([0] * pad + [1] * g.common + [0] * (smax - len(s)) + [1] * len(s))
        return {
            "input_ids": torch.tensor(full_ids, device=dev),
            "attention_mask": torch.tensor(full_mask, device=dev),
            "past_key_values": cache,
        }

    def _token_extra_keys(self, prompts: list[_Prompt], used: list[int]) -> list[str]:
        return sorted({k for p in used for k in prompts[p].token_extras})

    def _full_batch(self, prompts: list[_Prompt], row_prompt: list[int]) -> dict[str, Any]:
        """Every row carries its whole prompt (left-padded) and its own copy of the image tensors."""
        import torch

        dev = self.device
        lmax = max(len(prompts[p].ids) for p in row_prompt)
        keys = self._token_extra_keys(prompts, list(dict.fromkeys(row_prompt)))
        ids, mask, tok_extras = [], [], {k: [] for k in keys}
        extras: dict[str, list[Any]] = {}
        for p in row_prompt:
            pr = prompts[p]
            pad = lmax - len(pr.ids)
            ids.append([self.pad_id] * pad + pr.ids)
            mask.append([0] * pad + [1] * len(pr.ids))
            for k in keys:
                tok_extras[k].append([0] * pad + pr.token_extras.get(k, [0] * len(pr.ids)))
            for k, v in pr.extras.items():
                extras.setdefault(k, []).append(v)
        batch: dict[str, Any] = {k: torch.cat(v).to(dev) for k, v in extras.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        batch.update({k: torch.tensor(v, device=dev) for k, v in tok_extras.items()})
        batch["input_ids"] = torch.tensor(ids, device=dev)
        batch["attention_mask"] = torch.tensor(mask, device=dev)
        return batch

    def _decode(
        self, batch: dict[str, Any], specs: list[Any], prompts: list[_Prompt], row_prompt: list[int]
    ) -> dict[tuple[int, int], Completion]:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from slowthink.engines._hf_decode import RowSampler, RowStops

        width = batch["input_ids"].shape[1]
        sampler = RowSampler(specs, top_k=self.config.top_k, min_p=self.config.min_p, device=self.device)
        stops = RowStops(specs, width, self.tokenizer, self.eos_ids)
        gen_config = copy.deepcopy(self.model.generation_config)
        gen_config.max_new_tokens = max(s.max_new for s in specs)
        gen_config.do_sample = False
        gen_config.num_beams = 1
        gen_config.use_cache = True
        seqs = self.model.generate(
            **batch,
            generation_config=gen_config,
            logits_processor=LogitsProcessorList([sampler]),
            stopping_criteria=StoppingCriteriaList([stops]),
        )
        gen = seqs[:, width:].tolist()
        results: dict[tuple[int, int], Completion] = {}
        for r, spec in enumerate(specs):
            done = stops.done_at[r]
            reason = stops.reason[r]
            if done is None:
                done, reason = len(gen[r]), "length"
            tokens = gen[r][:done]
            text_tokens = tokens[:-1] if reason == "eos" else tokens
            text = self.tokenizer.decode(text_tokens, skip_special_tokens=True)
            text, stop_str = apply_stop(text, spec.stops)
            finish = "stop" if (stop_str is not None or reason in ("eos", "stop")) else "length"
            results[(spec.request, spec.sample)] = Completion(
                text=text,
                finish_reason=finish,
                stop_str=stop_str,
                prompt_tokens=len(prompts[row_prompt[r]].ids),
                generated_tokens=len(tokens),
                logprobs=sampler.logprobs_of(r, done) if (spec.logprobs or spec.top_logprobs) else None,
                top_logprobs=(
                    sampler.top_logprobs_of(r, done, spec.top_logprobs, self._token_text)
                    if spec.top_logprobs
                    else None
                ),
            )
        return results

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


# -- helpers ----------------------------------------------------------------------------------------


def _image_id(img: Any) -> Any:
    return str(img) if isinstance(img, (str, Path)) else ("pil", id(img))


def _common_prefix(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


def _plain_dynamic_cache(cache: Any) -> bool:
    """True for a DynamicCache of full-attention layers (safe to copy rows and pad)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer for layer in cache.layers)


def _who(i: int, request: Request) -> str:
    """How error messages name a request: its index in the call, and its tag when it has one."""
    return f"hf: request {i}" + ("" if request.tag is None else f" (tag {request.tag!r})")


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
