"""``prm``: process reward models (Hugging Face transformers), chosen by protocol, not by model name.

Two protocols cover the open PRMs:

``step_tag`` (Math-Shepherd style; ``AutoModelForCausalLM``)
    The steps are joined by a step tag (default ``ки``): ``{question} {step 1} ки\\n{step 2} ки``.
    A step's score is the softmax over the logits of the *good* and *bad* tokens (default ``+`` /
    ``-``) at its tag position, the probability of *good*. One forward pass scores every step.
``token_cls`` (TRL ``PRMTrainer`` style; ``AutoModelForTokenClassification``)
    ``[bos] {question} {step 1}{sep}{step 2}{sep}``: a token-classification head is read at the
    last token of the separator after each step (default ``\\n``; Qwen2.5-Math-PRM uses
    ``<extra_0>`` with ``chat=True``, ``auto_class="auto"`` and ``trust_remote_code=True``); the
    step's score is the softmax probability of the *good* label (default 1, TRL's convention).

The scorer batches the forward passes of all uncached paths of a call (right padding, an attention
mask) and caches the score of every (problem id, step prefix), so a step is scored once across
search depths; ``forward_passes`` counts model calls. Inputs are built piece by piece (question,
then each step and its tag/separator), so the read positions are exact whatever the tokenizer
merges. A PRM that is a VLM (a processor with an image processor) gets the problem's images: the
question piece is run through the processor (image tokens expanded, pixel values); such paths are
forwarded one at a time.

torch and transformers are imported when a PRM is built, never at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slowthink.formats.base import user_prompt
from slowthink.scorers.base import ScoreQuery, ScoreResult
from slowthink.types import Problem, SlowthinkError

PROTOCOLS: tuple[str, ...] = ("step_tag", "token_cls")
AUTO_CLASSES: tuple[str, ...] = ("default", "causal_lm", "token_cls", "image_text_to_text", "auto")
INSTALL_HINT = "pip install 'slowthink[hf]' (torch, transformers, tokenizers)"


@dataclass
class PRMConfig:
    """Options of :class:`PRMScorer`."""

    protocol: str = "step_tag"
    """How the model reads steps: ``step_tag`` (tag token + good/bad token logits) or ``token_cls``
    (token-classification head at each step separator)."""
    step_tag: str = "ки"
    """``step_tag``: the text that closes every step (Math-Shepherd's ``ки``); read at its last token."""
    step_tag_prefix: str = " "
    """``step_tag``: text between a step and its tag (Math-Shepherd: a space)."""
    step_joiner: str = "\n"
    """``step_tag``: text between a tag and the next step."""
    good_token: str = "+"
    """``step_tag``: the token whose probability is the step score."""
    bad_token: str = "-"
    """``step_tag``: the competing token."""
    step_tag_id: int | None = None
    """``step_tag``: token id of the tag; overrides ``step_tag`` (for tokenizers that split it)."""
    good_token_id: int | None = None
    """``step_tag``: token id of the good token; overrides ``good_token``."""
    bad_token_id: int | None = None
    """``step_tag``: token id of the bad token; overrides ``bad_token``."""
    separator: str = "\n"
    """``token_cls``: text after every step; the head is read at its last token."""
    good_label: int = 1
    """``token_cls``: index of the *good* label of the head."""
    question_joiner: str = " "
    """Text between the question and the first step (Math-Shepherd: a space; TRL's ``PRMTrainer``
    puts nothing there: use ``""`` for PRMs trained with it)."""
    chat: bool = False
    """Wrap the question in the tokenizer's chat template (user turn + assistant opener)."""
    add_bos: bool = True
    """Start with the BOS token when the tokenizer has one (Math-Shepherd, TRL)."""
    images: bool = True
    """Give a VLM PRM the problem's images (ignored when the model has no image processor)."""
    batch_size: int = 8
    """Paths per forward pass."""
    max_length: int | None = None
    """Longest input in tokens (``None``: the model's ``max_position_embeddings``); longer inputs
    lose their start, and steps whose read position falls off score ``None``."""
    device: str = "cpu"
    """``cpu``, ``cuda``, ``cuda:1`` or ``auto``."""
    dtype: str = "auto"
    """``auto`` (float32 on CPU, bf16/fp16 on GPU), ``float32``, ``bfloat16``, ``float16``."""
    auto_class: str = "default"
    """Model class: ``default`` (by protocol: causal LM, or image-text-to-text for a VLM; token
    classification), ``causal_lm``, ``token_cls``, ``image_text_to_text``, ``auto`` (``AutoModel``,
    for remote-code PRMs whose output has ``logits`` over labels)."""
    trust_remote_code: bool = False
    """Allow the model folder's own code (needed by some PRMs, e.g. Qwen2.5-Math-PRM)."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise SlowthinkError(
                f"unknown PRM protocol '{self.protocol}': choose one of {', '.join(PROTOCOLS)}"
            )
        if self.auto_class not in AUTO_CLASSES:
            raise ValueError(f"PRMConfig.auto_class must be one of {AUTO_CLASSES}, got {self.auto_class!r}")
        if self.batch_size < 1:
            raise ValueError(f"PRMConfig.batch_size must be >= 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"PRMConfig.max_length must be >= 8 or None, got {self.max_length}")
        if self.protocol == "step_tag" and not (self.step_tag or self.step_tag_id is not None):
            raise ValueError("PRMConfig.step_tag must not be empty for protocol 'step_tag'")
        if self.protocol == "token_cls" and not self.separator:
            raise ValueError("PRMConfig.separator must not be empty for protocol 'token_cls'")


@dataclass
class _Seq:
    """One path to forward: token ids, where to read each step, and images for a VLM."""

    key: tuple[str, str]
    ids: list[int]
    positions: list[int | None]
    prefixes: list[tuple[str, str]]
    extra: dict[str, Any] | None = None


def _single_id(tokenizer: Any, text: str, what: str, option: str) -> int:
    """The id of ``text`` as one token: ``' '+text`` when that is one token, else ``text``."""
    for candidate in (" " + text, text):
        ids = tokenizer.encode(candidate, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
    tid = tokenizer.convert_tokens_to_ids(text)
    if isinstance(tid, int) and tid != getattr(tokenizer, "unk_token_id", None) and tid >= 0:
        return tid
    raise SlowthinkError(f"the PRM's tokenizer has no single token for the {what} {text!r}: pass {option}=ID")


def _imports() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise SlowthinkError(f"the 'prm' scorer needs torch and transformers: {INSTALL_HINT}") from e
    return torch, transformers


class PRMScorer:
    """A process reward model as a :class:`~slowthink.scorers.base.StepScorer`.

    Args:
        path: a local transformers folder.
        config: a :class:`PRMConfig`; keyword ``overrides`` set its fields (``protocol=...``).
    """

    name = "prm"

    def __init__(self, path: str | Path, config: PRMConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = PRMConfig(**overrides)
        elif overrides:
            config = PRMConfig(**{**asdict(config), **overrides})
        self.config = config
        self.path = Path(path)
        if not self.path.is_dir():
            raise SlowthinkError(f"PRM folder not found: {self.path} (pass prm:/path/to/hf_folder#protocol)")
        self.forward_passes = 0
        """Model forward calls so far (tests assert caching with it)."""
        self.sequences_scored = 0
        """Paths forwarded so far."""
        self._cache: dict[tuple[str, str], float | None] = {}
        self._load()

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        from slowthink.engines._hf_load import quiet_transformers

        with quiet_transformers():
            self._load_model()

    def _load_model(self) -> None:
        from slowthink.engines._hf_load import pick_device, pick_dtype

        _, transformers = _imports()
        cfg = self.config
        self.device = pick_device(cfg.device)
        dtype = pick_dtype(cfg.dtype, self.device)
        remote = {"trust_remote_code": cfg.trust_remote_code}
        try:
            model_config = transformers.AutoConfig.from_pretrained(str(self.path), **remote)
        except (OSError, ValueError) as e:
            raise SlowthinkError(f"{self.path} is not a transformers model folder ({e})") from e
        self.is_vlm = getattr(model_config, "vision_config", None) is not None
        self.processor = None
        if self.is_vlm:
            self.processor = self._load_processor(remote)
            self.tokenizer = getattr(self.processor, "tokenizer", None) or self.processor
        else:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path), **remote)
        kind = cfg.auto_class
        if kind == "default":
            if cfg.protocol == "token_cls":
                kind = "token_cls"
            else:
                kind = "image_text_to_text" if self.is_vlm else "causal_lm"
        classes = {
            "causal_lm": "AutoModelForCausalLM",
            "token_cls": "AutoModelForTokenClassification",
            "image_text_to_text": "AutoModelForImageTextToText",
            "auto": "AutoModel",
        }
        auto = getattr(transformers, classes[kind])
        try:
            self.model = auto.from_pretrained(str(self.path), dtype=dtype, **remote)
        except (OSError, ValueError, KeyError) as e:
            raise SlowthinkError(
                f"could not load {self.path} as {classes[kind]} for PRM protocol '{cfg.protocol}': {e} "
                "(check the protocol, or set auto_class / trust_remote_code)"
            ) from e
        self.model.to(self.device).eval()
        tok = self.tokenizer
        self.pad_id = next((i for i in (tok.pad_token_id, tok.eos_token_id, 0) if i is not None), 0)
        self.max_length = cfg.max_length or getattr(
            getattr(self.model.config, "text_config", self.model.config), "max_position_embeddings", None
        )
        if cfg.protocol == "step_tag":
            if cfg.step_tag_id is not None:
                self.tag_ids = [cfg.step_tag_id]
            else:
                self.tag_ids = tok.encode(cfg.step_tag_prefix + cfg.step_tag, add_special_tokens=False)
            good = (
                cfg.good_token_id
                if cfg.good_token_id is not None
                else _single_id(tok, cfg.good_token, "good token", "good_token_id")
            )
            bad = (
                cfg.bad_token_id
                if cfg.bad_token_id is not None
                else _single_id(tok, cfg.bad_token, "bad token", "bad_token_id")
            )
            if good == bad:
                raise SlowthinkError(f"the PRM's good and bad tokens are the same token ({good})")
            self.label_ids = [good, bad]
        else:
            self.sep_ids = tok.encode(cfg.separator, add_special_tokens=False)
            if not self.sep_ids:
                raise SlowthinkError(f"the PRM separator {cfg.separator!r} encodes to no token")
            num_labels = getattr(self.model.config, "num_labels", 2)
            if not 0 <= cfg.good_label < max(num_labels, 1):
                raise SlowthinkError(
                    f"PRM good_label {cfg.good_label} is out of range for a head with {num_labels} labels"
                )

    def _load_processor(self, remote: dict[str, Any]) -> Any:
        from slowthink.engines._hf_load import load_processor  # Qwen2-VL without torchvision

        return load_processor(self.path, **remote)

    # -- inputs ---------------------------------------------------------------------------------
    def _prompt_text(self, problem: Problem, n_images: int) -> str:
        question = user_prompt(problem)
        owner = self.processor if n_images and self.processor is not None else self.tokenizer
        if self.config.chat and getattr(owner, "chat_template", None):
            content: Any = question
            if n_images:
                content = [{"type": "image"}] * n_images + [{"type": "text", "text": question}]
            return owner.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        if n_images:
            token = getattr(self.processor, "image_token", None) or "<image>"
            return (token + "\n") * n_images + question
        return question

    def _images(self, problem: Problem) -> list[Any]:
        if not (self.config.images and self.processor is not None and problem.images):
            return []
        if getattr(self.processor, "image_processor", None) is None:
            return []
        from PIL import Image

        images = []
        for img in problem.images:
            if not isinstance(img, (str, Path)):
                images.append(img)  # already a PIL image
                continue
            try:
                with Image.open(img) as im:
                    images.append(im.convert("RGB"))
            except (OSError, ValueError) as e:
                raise SlowthinkError(f"PRM: cannot open image {img} of problem {problem.id}: {e}") from e
        return images

    def _prompt_ids(self, problem: Problem) -> tuple[list[int], dict[str, Any] | None]:
        images = self._images(problem)
        text = self._prompt_text(problem, len(images))
        tok = self.tokenizer
        if images:
            enc = self.processor(text=[text], images=images, return_tensors="pt")
            ids = enc["input_ids"][0].tolist()
            extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
        else:
            ids = tok.encode(text, add_special_tokens=False)
            extra = None
        bos = getattr(tok, "bos_token_id", None)
        if self.config.add_bos and bos is not None and (not ids or ids[0] != bos) and not self.config.chat:
            ids = [bos, *ids]
        return ids, extra

    def _sequence(self, q: ScoreQuery) -> _Seq:
        cfg = self.config
        tok = self.tokenizer
        ids, extra = self._prompt_ids(q.problem)
        positions: list[int | None] = []
        prefixes = []
        text = ""
        for i, step in enumerate(q.steps):
            text += step
            prefixes.append((q.problem.id, text))
            body = step.strip()
            if cfg.protocol == "step_tag":
                lead = cfg.question_joiner if i == 0 else cfg.step_joiner
                ids += tok.encode(lead + body, add_special_tokens=False) if (lead + body) else []
                ids += self.tag_ids
            else:
                lead = cfg.question_joiner if i == 0 else ""
                ids += tok.encode(lead + body, add_special_tokens=False) if (lead + body) else []
                ids += self.sep_ids
            positions.append(len(ids) - 1)
        return _Seq((q.problem.id, text), ids, positions, prefixes, extra)

    def _truncate(self, seq: _Seq) -> None:
        limit = self.max_length
        if limit is None or len(seq.ids) <= limit:
            return
        if seq.extra:  # image tokens cannot be cut: keep the whole input and hope the model copes
            return
        cut = len(seq.ids) - limit
        seq.ids = seq.ids[cut:]
        seq.positions = [None if p is None or p - cut < 0 else p - cut for p in seq.positions]

    # -- forward --------------------------------------------------------------------------------
    def _forward(self, batch: Sequence[_Seq]) -> list[list[float | None]]:
        torch, _ = _imports()
        width = max(len(s.ids) for s in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, s in enumerate(batch):
            input_ids[b, : len(s.ids)] = torch.tensor(s.ids, dtype=torch.long)
            mask[b, : len(s.ids)] = 1
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if len(batch) == 1 and batch[0].extra:
            inputs.update(batch[0].extra)
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs)
        self.forward_passes += 1
        self.sequences_scored += len(batch)
        logits = out.logits if hasattr(out, "logits") else out[0]
        logits = logits.float()
        results = []
        for b, s in enumerate(batch):
            valid = [p for p in s.positions if p is not None]
            scores: dict[int, float] = {}
            if valid:
                at = logits[b, valid]
                if self.config.protocol == "step_tag":
                    probs = torch.softmax(at[:, self.label_ids], dim=-1)[:, 0]
                else:
                    probs = torch.softmax(at, dim=-1)[:, self.config.good_label]
                scores = dict(zip(valid, probs.tolist()))
            results.append([None if p is None else float(scores[p]) for p in s.positions])
        return results

    def score(self, queries: Sequence[ScoreQuery]) -> list[ScoreResult]:
        """One score per step: P(good) at the step's tag / separator. One batched forward per
        ``batch_size`` uncached paths; cached (problem id, prefix) steps cost nothing."""
        todo: dict[tuple[str, str], _Seq] = {}
        owner: list[tuple[str, str] | None] = []
        for q in queries:
            prefixes = []
            text = ""
            for step in q.steps:
                text += step
                prefixes.append((q.problem.id, text))
            if q.steps and any(p not in self._cache for p in prefixes):
                key = (q.problem.id, text)
                if key not in todo:
                    seq = self._sequence(q)
                    self._truncate(seq)
                    todo[key] = seq
                owner.append(key)
            else:
                owner.append(None)
        # A path that is a step-prefix of another path in this call is scored by the longer one.
        covered = {p for s in todo.values() for p in s.prefixes[:-1]}
        seqs = [s for k, s in todo.items() if k not in covered]
        fresh: dict[tuple[str, str], float | None] = {}
        plain = sorted((s for s in seqs if not s.extra), key=lambda s: len(s.ids))
        with_images = [s for s in seqs if s.extra]
        batches = [
            plain[i : i + self.config.batch_size] for i in range(0, len(plain), self.config.batch_size)
        ]
        batches += [[s] for s in with_images]
        for batch in batches:
            for s, scores in zip(batch, self._forward(batch)):
                for prefix, sc in zip(s.prefixes, scores):
                    fresh[prefix] = sc
                    self._cache.setdefault(prefix, sc)
        results = []
        charged: set[tuple[str, str]] = set()
        for q, key in zip(queries, owner):
            text = ""
            scores = []
            for step in q.steps:
                text += step
                k = (q.problem.id, text)
                scores.append(self._cache[k] if k in self._cache else fresh.get(k))
            pay = key is not None and key not in charged and key not in covered
            if pay:
                charged.add(key)
            results.append(
                ScoreResult(
                    scores=scores,
                    prompt_tokens=len(todo[key].ids) if pay and key is not None else 0,
                    calls=1 if key is not None else 0,
                )
            )
        return results
