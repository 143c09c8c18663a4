"""``prm``: process reward models (Hugging Face transformers), chosen by protocol, not by model name.

Two protocols cover the open PRMs:

``step_tag`` (``AutoModelForCausalLM``)
    Every step is closed by a step tag; a step's score is the softmax over the logits of the
    *good* and *bad* tokens (default ``+`` / ``-``) at the tag's last token, the probability of
    *good*. One forward pass scores every step.
``token_cls`` (``AutoModelForTokenClassification``, or ``AutoModel`` for remote-code heads)
    A separator follows every step; a token-classification head is read at its last token; the
    step's score is the softmax probability of the *good* label (default 1).

How the question and steps are wrapped is what the PRM was trained on, so it is a **preset**
(:data:`PRESETS`), each from its model card or its paper's code; a protocol alone means its
family's preset, and every field can be overridden (``prm:PATH#token_cls,system=...,chat=true``):

- ``math-shepherd`` (step_tag): ``[bos]{question} Step 1: {s1} ки|\\nStep 2: {s2} ки|``
- ``atomthink`` (step_tag; AtomThink's code, OpenR-style PRMs):
  ``[bos]{question} {s1} \\n\\n\\n\\n\\n|{s2} \\n\\n\\n\\n\\n|`` (good/bad ``' +'``/``' -'``)
- ``trl`` (token_cls; TRL ``PRMTrainer``): ``[bos]{question}{s1}\\n|{s2}\\n|``
- ``qwen2.5-math-prm`` (token_cls): the chat template over system ``Please reason step by step,
  and put your final answer within \\boxed{}.``, user = question, assistant =
  ``{s1}<extra_0>|{s2}<extra_0>|`` (``AutoModel``, ``trust_remote_code``)

(``|`` marks a read position; ``[bos]`` only when the tokenizer has one.)
:meth:`PRMScorer.render` returns the exact input text of a path.

The scorer batches the forward passes of all uncached paths of a call (right padding, an attention
mask) and caches the score of every (problem id, step prefix), so a step is scored once across
search depths; ``forward_passes`` counts model calls. Inputs are built piece by piece (question,
then each step and its tag/separator), so the read positions are exact whatever the tokenizer
merges. A PRM that is a VLM (a processor with an image processor) gets the problem's images: the
question piece is run through the processor (image tokens expanded, pixel values); such paths are
forwarded one at a time.

A folder written by ``slowthink train prm`` holds ``slowthink_prm.json`` (:data:`METADATA`): the
layout fields it was trained with, which become this scorer's defaults (``prm:DIR`` needs no
protocol); the trainer builds its inputs with :meth:`PRMScorer.encode`, the same code as scoring.

torch and transformers are imported when a PRM is built, never at import time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slowthink.engines.hf_load import load_processor, pick_device, pick_dtype, quiet_transformers
from slowthink.images import open_image
from slowthink.prompts import get_template, user_prompt
from slowthink.scorers.base import PrefixKey, ScoreQuery, ScoreResult, StepCache
from slowthink.types import Problem, SlowthinkError

PROTOCOLS: tuple[str, ...] = ("step_tag", "token_cls")
AUTO_CLASSES: tuple[str, ...] = ("default", "causal_lm", "token_cls", "image_text_to_text", "auto")
INSTALL_HINT = "pip install 'slowthink[hf]' (torch, transformers, tokenizers)"

_FALLBACK: dict[str, Any] = dict(
    step_tag="ки",
    step_tag_prefix=" ",
    step_joiner="\n",
    good_token="+",
    bad_token="-",
    separator="\n",
    question_joiner="",
    number_steps=False,
    chat=False,
    system="",
    add_bos=True,
    auto_class="default",
    trust_remote_code=False,
)
"""Values of the preset-controlled fields that a preset leaves out."""
PRESETS: dict[str, dict[str, Any]] = {
    # Math-Shepherd card: f"{question} {output}", output = "Step 1: ... ки\nStep 2: ... ки", BOS from
    # tokenizer.encode; P('+') against '-' at every 'ки'. No chat template.
    "math-shepherd": dict(protocol="step_tag", question_joiner=" ", number_steps=True),
    # AtomThink's code (OpenR math-psa style PRMs): question + " " + " \n\n\n\n\n".join(steps) +
    # " \n\n\n\n\n"; the tag is read at its last token, ' +' against ' -'. No chat template.
    "atomthink": dict(protocol="step_tag", step_tag="\n\n\n\n\n", step_joiner="", question_joiner=" "),
    # TRL PRMTrainer: [bos] + prompt ids + (step ids + separator ids) per step, nothing in between.
    "trl": dict(protocol="token_cls"),
    # Qwen2.5-Math-PRM card: chat template over [system, user: question, assistant: steps joined by
    # "<extra_0>" with a trailing "<extra_0>"]; P(label 1) at every <extra_0>; AutoModel, remote code.
    "qwen2.5-math-prm": dict(
        protocol="token_cls",
        separator="<extra_0>",
        chat=True,
        system=get_template("prm.qwen_math.system"),
        add_bos=False,
        auto_class="auto",
        trust_remote_code=True,
    ),
}
"""The input each known PRM family was trained with, by name (``prm:PATH#NAME``): what differs
from :data:`_FALLBACK`."""
PROTOCOL_PRESETS: dict[str, str] = {"step_tag": "math-shepherd", "token_cls": "trl"}
"""The preset a bare protocol name stands for."""
METADATA = "slowthink_prm.json"
"""Written by ``slowthink train prm`` into the PRM's folder: ``{"config": {PRMConfig fields the
PRM was trained with}, "base_model": ..., ...}``; the scorer starts from those fields."""


@dataclass
class PRMConfig:
    """Options of :class:`PRMScorer`.

    The fields marked *(preset)* default to ``None``: "as the preset says". ``preset`` names one of
    :data:`PRESETS` (the input a PRM family was trained with, from its model card or code); with no
    preset, the protocol's own (``step_tag`` -> ``math-shepherd``, ``token_cls`` -> ``trl``). Any
    field given explicitly overrides the preset.

    >>> c = PRMConfig(preset="qwen2.5-math-prm")
    >>> c.protocol, c.chat, c.separator, c.system
    ('token_cls', True, '<extra_0>', 'Please reason step by step, and put your final answer within \\\\boxed{}.')
    >>> PRMConfig(protocol="token_cls", system="Be brief.").preset, PRMConfig().step_tag
    ('trl', 'ки')
    """

    protocol: str | None = None
    """*(preset)* How the model reads steps: ``step_tag`` (tag token + good/bad token logits) or
    ``token_cls`` (token-classification head at each step separator); default ``step_tag``."""
    preset: str | None = None
    """The input wrapper a PRM family was trained with: one of :data:`PRESETS`
    (``math-shepherd``, ``atomthink``, ``trl``, ``qwen2.5-math-prm``); ``None``: the protocol's."""
    step_tag: str | None = None
    """*(preset)* ``step_tag``: the text that closes every step (Math-Shepherd's ``ки``); read at its
    last token."""
    step_tag_prefix: str | None = None
    """*(preset)* ``step_tag``: text between a step and its tag (Math-Shepherd: a space)."""
    step_joiner: str | None = None
    """*(preset)* ``step_tag``: text between a tag and the next step."""
    good_token: str | None = None
    """*(preset)* ``step_tag``: the token whose probability is the step score."""
    bad_token: str | None = None
    """*(preset)* ``step_tag``: the competing token."""
    step_tag_id: int | None = None
    """``step_tag``: token id of the tag; overrides ``step_tag`` (for tokenizers that split it)."""
    good_token_id: int | None = None
    """``step_tag``: token id of the good token; overrides ``good_token``."""
    bad_token_id: int | None = None
    """``step_tag``: token id of the bad token; overrides ``bad_token``."""
    separator: str | None = None
    """*(preset)* ``token_cls``: text after every step; the head is read at its last token."""
    good_label: int = 1
    """``token_cls``: index of the *good* label of the head."""
    question_joiner: str | None = None
    """*(preset)* Text between the question (or the assistant opener, with ``chat``) and the first
    step: Math-Shepherd and AtomThink a space, TRL and Qwen nothing."""
    number_steps: bool | None = None
    """*(preset)* Start every step that lacks it with ``Step k:`` (Math-Shepherd's training text)."""
    chat: bool | None = None
    """*(preset)* Render the input with the tokenizer's chat template: ``system`` turn (when not
    empty), the question as the user turn, the steps as the assistant turn."""
    system: str | None = None
    """*(preset)* The system turn with ``chat`` (Qwen2.5-Math-PRM: its card's prompt); ``""``: none."""
    add_bos: bool | None = None
    """*(preset)* Start with the BOS token when the tokenizer has one (Math-Shepherd, TRL; never
    with ``chat``: the template decides)."""
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
    auto_class: str | None = None
    """*(preset)* Model class: ``default`` (by protocol: causal LM, or image-text-to-text for a VLM;
    token classification), ``causal_lm``, ``token_cls``, ``image_text_to_text``, ``auto``
    (``AutoModel``, for remote-code PRMs whose output has ``logits`` over labels)."""
    trust_remote_code: bool | None = None
    """*(preset)* Allow the model folder's own code (Qwen2.5-Math-PRM's card loads it this way)."""

    def __post_init__(self) -> None:
        self._apply_preset()
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

    def _apply_preset(self) -> None:
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise SlowthinkError(
                f"unknown PRM protocol '{self.protocol}': choose one of {', '.join(PROTOCOLS)} "
                f"or a preset ({', '.join(PRESETS)})"
            )
        if self.preset is None:
            self.preset = PROTOCOL_PRESETS[self.protocol or "step_tag"]
        if self.preset not in PRESETS:
            raise SlowthinkError(
                f"unknown PRM preset '{self.preset}': choose one of {', '.join(PRESETS)} "
                f"(or a protocol: {', '.join(PROTOCOLS)})"
            )
        values = {**_FALLBACK, **PRESETS[self.preset]}
        if self.protocol is not None and self.protocol != values["protocol"]:
            raise SlowthinkError(
                f"PRM preset '{self.preset}' uses protocol '{values['protocol']}', not '{self.protocol}': "
                "drop one of them"
            )
        for name, value in values.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


_STEPS_MARK = "\x00slowthink-steps\x00"
"""Stands in for the steps while the chat template is rendered (split off afterwards)."""
_STEP_NUMBERED = re.compile(r"step\s*\d+\s*[:.]", re.IGNORECASE)


@dataclass
class PRMInput:
    """One path to forward: token ids, where to read each step, and images for a VLM."""

    ids: list[int]
    positions: list[int | None]
    prefixes: list[PrefixKey]
    extra: dict[str, Any] | None = None


def saved_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The :class:`PRMConfig` fields saved in a trained PRM's folder (:data:`METADATA`), or ``{}``;
    also ``{}`` when ``overrides`` ask for another protocol or preset than the saved ones."""
    f = Path(path) / METADATA
    if not f.is_file():
        return {}
    try:
        saved = json.loads(f.read_text(encoding="utf-8"))["config"]
    except (ValueError, KeyError, TypeError) as e:
        raise SlowthinkError(
            f"{f} is not a slowthink PRM metadata file ({e}); delete it or train again"
        ) from e
    for key in ("protocol", "preset"):
        if overrides and overrides.get(key) is not None and overrides[key] != saved.get(key):
            return {}
    return saved


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
            config = PRMConfig(**{**saved_config(path, overrides), **overrides})
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
        self._cache: StepCache[float | None] = StepCache()
        self._load()

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        with quiet_transformers():
            self._load_model()

    def _load_model(self) -> None:
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
        if cfg.chat and not (
            getattr(self.tokenizer, "chat_template", None) or getattr(self.processor, "chat_template", None)
        ):
            raise SlowthinkError(
                f"PRM preset '{cfg.preset}' renders a chat template, but {self.path} has none: "
                "set chat=false (or add the model's chat_template.jinja to the folder)"
            )
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
        return load_processor(self.path, **remote)  # Qwen2-VL without torchvision

    # -- inputs ---------------------------------------------------------------------------------
    def _wrapper(self, problem: Problem, n_images: int) -> tuple[str, str]:
        """The text before the first step and after the last one: the question (image tokens
        first, for a VLM), or with ``chat`` the template rendered around the assistant turn."""
        question = user_prompt(problem)
        if not self.config.chat:
            if n_images:
                token = getattr(self.processor, "image_token", None) or "<image>"
                return (token + "\n") * n_images + question, ""
            return question, ""
        owner = self.processor if n_images and self.processor is not None else self.tokenizer
        content: Any = question
        if n_images:
            content = [{"type": "image"}] * n_images + [{"type": "text", "text": question}]
        system: Any = self.config.system
        if n_images:  # a VLM processor's template reads every turn as a list of parts
            system = [{"type": "text", "text": system}]
        messages = [{"role": "system", "content": system}] if self.config.system else []
        messages.append({"role": "user", "content": content})
        try:
            text = owner.apply_chat_template(
                [*messages, {"role": "assistant", "content": _STEPS_MARK}],
                add_generation_prompt=False,
                tokenize=False,
            )
            if text.count(_STEPS_MARK) == 1:
                head, _, tail = text.partition(_STEPS_MARK)
                return head, tail
            # A template that rewrites the assistant turn: render up to the open assistant turn.
            return owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), ""
        except Exception as e:  # jinja2 TemplateError: e.g. a template with no system role
            raise SlowthinkError(
                f"the PRM's chat template failed on its input ({type(e).__name__}: {e}): "
                "set system= (empty for none) or chat=false in the scorer spec"
            ) from e

    def _step_text(self, index: int, step: str) -> str:
        """Step ``index`` (0-based) as the PRM reads it: stripped, ``Step k:`` added with ``number_steps``."""
        body = step.strip()
        if self.config.number_steps and body and not _STEP_NUMBERED.match(body):
            body = get_template("prm.step_number").format(k=index + 1) + body
        return body

    def _step_pieces(self, steps: Sequence[str]) -> list[tuple[str, str]]:
        """(text, closer) per step: the step with its lead (question joiner or step joiner), and
        the tag/separator text read at its last token."""
        cfg = self.config
        out = []
        for i, step in enumerate(steps):
            if cfg.protocol == "step_tag":
                lead = cfg.question_joiner if i == 0 else cfg.step_joiner
                closer = cfg.step_tag_prefix + cfg.step_tag
            else:
                lead = cfg.question_joiner if i == 0 else ""
                closer = cfg.separator
            out.append((lead + self._step_text(i, step), closer))
        return out

    def render(self, problem: Problem, steps: Sequence[str]) -> str:
        """The PRM's input for ``steps`` as text, exactly as the model is fed it (BOS included;
        with ``step_tag_id`` the tag is shown as ``step_tag``).

        Tokens are built piece by piece (question, each step, each tag/separator), so the read
        positions are exact whatever the tokenizer merges."""
        n_images = len(self._images(problem))
        head, tail = self._wrapper(problem, n_images)
        bos = (
            self.tokenizer.bos_token
            if self._adds_bos(self.tokenizer.encode(head, add_special_tokens=False))
            else ""
        )
        return (bos or "") + head + "".join(text + closer for text, closer in self._step_pieces(steps)) + tail

    def _images(self, problem: Problem) -> list[Any]:
        if not (self.config.images and self.processor is not None and problem.images):
            return []
        if getattr(self.processor, "image_processor", None) is None:
            return []
        try:
            return [open_image(img) for img in problem.images]
        except SlowthinkError as e:
            raise SlowthinkError(f"PRM: cannot open image of problem {problem.id}: {e}") from e

    def _adds_bos(self, ids: list[int]) -> bool:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return bool(
            self.config.add_bos and not self.config.chat and bos is not None and (not ids or ids[0] != bos)
        )

    def _prompt_ids(self, problem: Problem) -> tuple[list[int], list[int], dict[str, Any] | None]:
        """Token ids before the first step and after the last, and a VLM's image inputs."""
        images = self._images(problem)
        head, tail = self._wrapper(problem, len(images))
        tok = self.tokenizer
        if images:
            enc = self.processor(text=[head], images=images, return_tensors="pt")
            ids = enc["input_ids"][0].tolist()
            extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
        else:
            ids = tok.encode(head, add_special_tokens=False)
            extra = None
        if self._adds_bos(ids):
            ids = [tok.bos_token_id, *ids]
        return ids, tok.encode(tail, add_special_tokens=False) if tail else [], extra

    def encode(self, q: ScoreQuery) -> PRMInput:
        """The model input of a path: token ids and the read position of each step (what
        :meth:`score` forwards; ``slowthink train prm`` trains on exactly these)."""
        tok = self.tokenizer
        ids, tail_ids, extra = self._prompt_ids(q.problem)
        positions: list[int | None] = []
        for piece, _closer in self._step_pieces(q.steps):
            ids += tok.encode(piece, add_special_tokens=False) if piece else []
            ids += self.tag_ids if self.config.protocol == "step_tag" else self.sep_ids
            positions.append(len(ids) - 1)
        ids += tail_ids
        return PRMInput(ids, positions, StepCache.keys(q), extra)

    def _truncate(self, seq: PRMInput) -> None:
        limit = self.max_length
        if limit is None or len(seq.ids) <= limit:
            return
        if seq.extra:  # image tokens cannot be cut: keep the whole input and hope the model copes
            return
        cut = len(seq.ids) - limit
        seq.ids = seq.ids[cut:]
        seq.positions = [None if p is None or p - cut < 0 else p - cut for p in seq.positions]

    # -- forward --------------------------------------------------------------------------------
    def _forward(self, batch: Sequence[PRMInput]) -> list[list[float | None]]:
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
        todo: dict[PrefixKey, PRMInput] = {}
        owner: list[PrefixKey | None] = []
        for q in queries:
            prefixes = StepCache.keys(q)
            if prefixes and any(p not in self._cache for p in prefixes):
                key = prefixes[-1]
                if key not in todo:
                    seq = self.encode(q)
                    self._truncate(seq)
                    todo[key] = seq
                owner.append(key)
            else:
                owner.append(None)
        # A path that is a step-prefix of another path in this call is scored by the longer one.
        covered = {p for s in todo.values() for p in s.prefixes[:-1]}
        seqs = [s for k, s in todo.items() if k not in covered]
        fresh: dict[PrefixKey, float | None] = {}
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
                    self._cache.put(prefix, sc)
        results = []
        charged: set[PrefixKey] = set()
        for q, key in zip(queries, owner):
            scores = [self._cache[k] if k in self._cache else fresh.get(k) for k in StepCache.keys(q)]
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
