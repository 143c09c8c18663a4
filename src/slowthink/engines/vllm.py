"""``vllm``: offline vLLM (``vllm.LLM``) with automatic prefix caching and multimodal prompts.

Spec: ``vllm:/path/or/model-id``. vLLM is imported only when the engine is built; without it the
engine fails with an install hint (vLLM needs a CUDA/ROCm GPU; on a CPU machine use ``llamacpp`` or
``hf``, or ``openai:URL#model`` against a vLLM server elsewhere).

How a request becomes a vLLM prompt:

* the chat is rendered with the model's chat template (the processor's for a VLM, else the
  tokenizer's; or ``chat_template=``) with the assistant turn opened, and ``Request.prefix`` is
  appended byte for byte; a leading BOS text is stripped since vLLM adds BOS when it tokenizes;
* a message with images gets ``{"type": "image"}`` parts before its text (the template writes the
  model's image placeholder) and the PIL images go in ``multi_modal_data``;
* ``SamplingParams``: ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop`` with
  ``include_stop_str_in_output=True`` (the stop stays in the text; ``stop_reason`` names it),
  ``seed``, ``logprobs`` (the number of top logprobs; 0 gives the sampled token's only). Greedy
  requests with ``n > 1`` are sampled once and copied (greedy samples are identical; each copy
  reports the token counts of its text).

All requests of one ``generate`` call go to vLLM in one ``LLM.generate`` call; identical prefixes
hit the prefix cache. Token counts: the prompt's tokens are split evenly over the ``n`` samples
(sums equal the prompt once, as vLLM computes it once), generated tokens are per sample. If vLLM
rejects the batch (e.g. one prompt longer than the context), requests are retried one by one so
only the bad one gets ``finish_reason='error'``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slowthink.engines.base import apply_stop, check_images, error_completions
from slowthink.images import open_image
from slowthink.types import Completion, Message, Request, SlowthinkError

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "the vllm engine needs vLLM and a GPU: pip install vllm (Linux + CUDA/ROCm); on this machine use "
    "--engine llamacpp or hf, or --engine openai:URL#model against a running vLLM server"
)

#: Options of :class:`VLLMEngine` passed to ``vllm.LLM`` (anything else goes through ``llm_kwargs``).
LLM_OPTIONS: tuple[str, ...] = (
    "dtype",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "trust_remote_code",
    "enforce_eager",
    "quantization",
    "max_num_seqs",
)

#: Options a user may set (``vllm:MODEL#max_model_len=4096``, ``--engine-option ...``).
USER_OPTIONS: frozenset[str] = frozenset(
    {
        "seed",
        "chat_template",
        "supports_images",
        "max_images_per_prompt",
        "enable_prefix_caching",
        "llm_kwargs",
    }
    | set(LLM_OPTIONS)
)


def import_vllm() -> Any:
    """``import vllm`` or a :class:`SlowthinkError` with the install hint."""
    try:
        import vllm
    except ImportError as e:
        raise SlowthinkError(INSTALL_HINT) from e
    return vllm


# -- pure helpers (unit-tested with stand-in objects) ---------------------------------------------
def sampling_kwargs(request: Request) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request.

    >>> sampling_kwargs(Request([], n=2, stop=["\\n"], seed=3, max_tokens=8))["include_stop_str_in_output"]
    True
    >>> sampling_kwargs(Request([], n=4, temperature=0.0))["n"]  # greedy: one sample, copied
    1
    """
    kw: dict[str, Any] = {
        "n": 1 if request.temperature == 0 else request.n,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if request.stop:
        kw["stop"] = list(request.stop)
        kw["include_stop_str_in_output"] = True
    if request.seed is not None:
        kw["seed"] = request.seed
    if request.logprobs:
        kw["logprobs"] = max(0, request.top_logprobs)
    return kw


def chat_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages for ``apply_chat_template``: plain text content, or image parts then a text part."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.images:
            content = [{"type": "image"} for _ in m.images] + [{"type": "text", "text": m.content}]
            out.append({"role": m.role, "content": content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def join_prompt(rendered: str, prefix: str, bos_token: str | None) -> str:
    """Rendered chat + prefix, without a leading BOS text (vLLM adds BOS when tokenizing).

    >>> join_prompt("<s>[INST] hi [/INST]", "Step 1:", "<s>")
    '[INST] hi [/INST]Step 1:'
    """
    if bos_token and rendered.startswith(bos_token):
        rendered = rendered[len(bos_token) :]
    return rendered + prefix


def convert_output(output: Any, request: Request) -> list[Completion]:
    """One ``vllm.RequestOutput`` -> ``request.n`` completions (copies for greedy ``n > 1``)."""
    samples = list(output.outputs)
    if not samples:
        return error_completions(request, "vllm engine: vLLM returned no output for this request")
    prompt_ids = getattr(output, "prompt_token_ids", None) or []
    n = request.n
    shares = [len(prompt_ids) // n + (1 if i < len(prompt_ids) % n else 0) for i in range(n)]
    out: list[Completion] = []
    for i in range(n):
        s = samples[i] if i < len(samples) else samples[i % len(samples)]
        out.append(_convert_sample(s, request, shares[i]))
    return out


def _convert_sample(sample: Any, request: Request, prompt_tokens: int) -> Completion:
    text = sample.text or ""
    reason = sample.finish_reason
    finish = "length" if reason == "length" else ("error" if reason == "abort" else "stop")
    stop_str: str | None = None
    if request.stop:
        cut, matched = apply_stop(text, request.stop)
        if matched is not None:
            text, stop_str = cut, matched
        elif finish == "stop" and isinstance(getattr(sample, "stop_reason", None), str):
            stop_str = sample.stop_reason
            if stop_str in request.stop and not text.endswith(stop_str):
                text += stop_str
    token_ids = list(getattr(sample, "token_ids", None) or [])
    logprobs = top = None
    if request.logprobs and getattr(sample, "logprobs", None):
        logprobs, top = [], []
        for tok, entry in zip(token_ids, sample.logprobs):
            chosen = entry.get(tok)
            logprobs.append(float(chosen.logprob) if chosen is not None else float("nan"))
            top.append({_token_text(k, v): float(v.logprob) for k, v in entry.items()})
        if not request.top_logprobs:
            top = None
    return Completion(
        text=text,
        finish_reason=finish,
        stop_str=stop_str,
        prompt_tokens=prompt_tokens,
        generated_tokens=len(token_ids),
        logprobs=logprobs,
        top_logprobs=top,
        error="vllm engine: the request was aborted" if finish == "error" else None,
    )


def _token_text(token_id: int, lp: Any) -> str:
    text = getattr(lp, "decoded_token", None)
    return text if isinstance(text, str) else str(token_id)


# -- the engine -----------------------------------------------------------------------------------
class VLLMEngine:
    """Offline vLLM engine. ``supports_images`` is True by default (set False for a text model)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        seed: int = 0,
        chat_template: str | None = None,
        supports_images: bool = True,
        max_images_per_prompt: int = 4,
        enable_prefix_caching: bool = True,
        llm_kwargs: dict[str, Any] | None = None,
        **llm_options: Any,
    ) -> None:
        vllm = import_vllm()
        unknown = set(llm_options) - set(LLM_OPTIONS)
        if unknown:
            raise SlowthinkError(
                f"unknown vllm engine option(s): {', '.join(sorted(unknown))}; known: {', '.join(LLM_OPTIONS)} "
                "(others go in llm_kwargs)"
            )
        self.model = model
        self.supports_images = bool(supports_images)
        self.chat_template = _read_template(chat_template)
        kwargs: dict[str, Any] = {
            "model": model,
            "seed": seed,
            "enable_prefix_caching": enable_prefix_caching,
        }
        if self.supports_images:
            kwargs["limit_mm_per_prompt"] = {"image": int(max_images_per_prompt)}
        kwargs.update(llm_options)
        kwargs.update(llm_kwargs or {})
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as e:  # vLLM raises many types; name the model and the fix
            raise SlowthinkError(f"vLLM could not load '{model}': {type(e).__name__}: {e}") from e
        self._vllm = vllm
        self.tokenizer = self.llm.get_tokenizer()
        self._processor: Any = None
        self._trust_remote_code = bool(kwargs.get("trust_remote_code", False))
        self.calls = 0

    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> VLLMEngine:
        if not target:
            raise SlowthinkError(
                "the vllm engine needs a model: use 'vllm:/path/to/model' or 'vllm:org/model-id'"
            )
        keep = {k: v for k, v in options.items() if k in USER_OPTIONS}
        return cls(target, **keep)

    def __repr__(self) -> str:
        return f"VLLMEngine(model={self.model!r})"

    # -- prompt -------------------------------------------------------------------------------
    def _renderer(self, with_images: bool) -> Any:
        if with_images:
            if self._processor is None:
                try:
                    from transformers import AutoProcessor

                    self._processor = AutoProcessor.from_pretrained(
                        self.model, trust_remote_code=self._trust_remote_code
                    )
                except Exception:  # no processor: the tokenizer's template must handle image parts
                    self._processor = False
            if self._processor is not False and hasattr(self._processor, "apply_chat_template"):
                return self._processor
        return self.tokenizer

    def render(self, request: Request) -> str:
        """The prompt text vLLM gets: chat template, assistant turn opened, prefix appended."""
        renderer = self._renderer(bool(request.images))
        try:
            rendered = renderer.apply_chat_template(
                chat_dicts(request.messages),
                tokenize=False,
                add_generation_prompt=True,
                chat_template=self.chat_template,
            )
        except ValueError as e:
            raise SlowthinkError(
                f"vllm engine: cannot render the chat for '{self.model}': {e} (pass chat_template=PATH)"
            ) from e
        return join_prompt(rendered, request.prefix, getattr(self.tokenizer, "bos_token", None))

    def _prompt(self, request: Request) -> dict[str, Any]:
        prompt: dict[str, Any] = {"prompt": self.render(request)}
        if request.images:
            images = [open_image(img) for img in request.images]
            prompt["multi_modal_data"] = {"image": images[0] if len(images) == 1 else images}
        return prompt

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Return ``len(requests)`` lists, the i-th holding ``requests[i].n`` completions."""
        requests = list(requests)
        check_images(self.name, self.supports_images, requests)
        results: list[list[Completion] | None] = [None] * len(requests)
        prompts: list[dict[str, Any]] = []
        params: list[Any] = []
        live: list[int] = []
        for i, r in enumerate(requests):
            try:
                prompts.append(self._prompt(r))
            except SlowthinkError as e:
                results[i] = error_completions(r, str(e))
                continue
            params.append(self._vllm.SamplingParams(**sampling_kwargs(r)))
            live.append(i)
        if live:
            self.calls += 1
            try:
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
                for i, o in zip(live, outputs):
                    results[i] = convert_output(o, requests[i])
            except Exception as batch_error:  # isolate the bad request(s)
                logger.warning("vllm engine: batch failed (%s); retrying requests one by one", batch_error)
                for i, p, sp in zip(live, prompts, params):
                    try:
                        [o] = self.llm.generate([p], [sp], use_tqdm=False)
                        results[i] = convert_output(o, requests[i])
                    except Exception as e:
                        results[i] = error_completions(
                            requests[i], f"vllm engine: request {i} failed: {type(e).__name__}: {e}"
                        )
        return [r if r is not None else [] for r in results]


def _read_template(spec: str | None) -> str | None:
    """``chat_template`` option: a file (``.jinja``, ``tokenizer_config.json``) or the Jinja text."""
    if not spec:
        return None
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix == ".json":
            tpl = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if not tpl:
                raise SlowthinkError(f"{path} has no 'chat_template' entry")
            return tpl if isinstance(tpl, str) else tpl[0]["template"]
        return path.read_text(encoding="utf-8")
    if "{%" in spec or "{{" in spec:
        return spec
    raise SlowthinkError(f"chat_template '{spec}' is neither a file nor Jinja text")


__all__ = [
    "INSTALL_HINT",
    "VLLMEngine",
    "chat_dicts",
    "convert_output",
    "import_vllm",
    "join_prompt",
    "sampling_kwargs",
]
