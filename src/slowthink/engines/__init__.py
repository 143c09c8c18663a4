"""Engines by name. Backends import lazily: ``import slowthink.engines`` pulls in no model library.

Spec strings (CLI ``--engine`` / ``--model`` and YAML ``engine:``)::

    llamacpp                      embedded SmolLM2-135M-Instruct GGUF
    llamacpp:/path/model.gguf     any GGUF
    hf:/path/to/hf_folder         transformers (text or VLM); ``hf:/dir#file.gguf`` loads a GGUF
    openai:http://127.0.0.1:8000/v1#model-name   any OpenAI-compatible server
    vllm:/path/or/model-id        offline vLLM
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from slowthink.engines.base import Engine, RecordingEngine, apply_stop, check_images
from slowthink.types import SlowthinkError

# name -> "module:Class"; each class has ``from_spec(target, fragment, **options)``.
ENGINES: dict[str, str] = {
    "llamacpp": "slowthink.engines.llamacpp:LlamaCppEngine",
    "hf": "slowthink.engines.hf:HFEngine",
    "openai": "slowthink.engines.openai:OpenAIEngine",
    "vllm": "slowthink.engines.vllm:VLLMEngine",
}


@dataclass(frozen=True)
class EngineSpec:
    kind: str
    target: str | None = None
    fragment: str | None = None

    @classmethod
    def parse(cls, spec: str) -> EngineSpec:
        """``kind[:target][#fragment]``; a bare path ending in ``.gguf`` means llamacpp."""
        spec = spec.strip()
        if not spec:
            raise SlowthinkError("empty engine spec: use e.g. 'llamacpp', 'hf:/path', 'openai:URL#model'")
        if spec.endswith(".gguf") and ":" not in spec.split("/", 1)[0]:
            return cls("llamacpp", spec)
        kind, _, rest = spec.partition(":")
        if kind not in ENGINES:
            raise SlowthinkError(f"unknown engine '{kind}' in spec '{spec}': choose one of {', '.join(ENGINES)}")
        target, _, fragment = rest.partition("#")
        return cls(kind, target or None, fragment or None)


def load_engine(spec: str | EngineSpec = "llamacpp", **options: Any) -> Engine:
    """Build an engine from a spec string; ``options`` go to the backend (seed, n_ctx, device, ...)."""
    s = EngineSpec.parse(spec) if isinstance(spec, str) else spec
    module_name, _, cls_name = ENGINES[s.kind].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name).from_spec(s.target, s.fragment, **options)


__all__ = ["ENGINES", "Engine", "EngineSpec", "RecordingEngine", "apply_stop", "check_images", "load_engine"]
