"""Engines by name. Backends import lazily: ``import slowthink.engines`` pulls in no model library.

Spec strings (CLI ``--engine`` / ``--model`` and YAML ``engine:``)::

    llamacpp                      embedded SmolLM2-135M-Instruct GGUF
    llamacpp:/path/model.gguf     any GGUF
    hf:/path/to/hf_folder         transformers (text or VLM); ``hf:/dir#file.gguf`` loads a GGUF
    openai:http://127.0.0.1:8000/v1#model-name   any OpenAI-compatible server
    vllm:/path/or/model-id        offline vLLM

Engine options ride in the fragment as ``key=value`` parts after the model (or alone)::

    openai:http://127.0.0.1:8000/v1#my-model,timeout_s=30,max_concurrency=4
    llamacpp:/path/model.gguf#n_ctx=8192

and the same options come from ``--engine-option key=value`` (and the named flags ``--api-key-env``,
``--timeout``, ``--max-concurrency``, ``--max-retries``) or YAML ``engine_options:``. Each engine kind
declares the options a user may set (:func:`engine_option_names`); an unknown one is an error naming
the valid ones, and an option given twice with different values is an error.
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


#: Options the framework passes to every engine (each backend keeps those it understands).
GENERIC_OPTIONS: frozenset[str] = frozenset({"n_threads", "seed"})


def _engine_class(kind: str) -> Any:
    if kind not in ENGINES:
        raise SlowthinkError(f"unknown engine '{kind}': choose one of {', '.join(ENGINES)}")
    module_name, _, cls_name = ENGINES[kind].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def engine_option_names(kind: str) -> frozenset[str]:
    """The options a user may set on engine ``kind`` (from the backend module's ``USER_OPTIONS``,
    or the openai engine's option fields less ``base_url``/``model``, which the spec gives)."""
    module = importlib.import_module(ENGINES[kind].partition(":")[0]) if kind in ENGINES else None
    if module is None:
        raise SlowthinkError(f"unknown engine '{kind}': choose one of {', '.join(ENGINES)}")
    names = getattr(module, "USER_OPTIONS", None)
    if names is None:
        names = set(module.OPTION_NAMES) - {"base_url", "model"}
    return frozenset(names)


def check_engine_options(kind: str, options: dict[str, Any], where: str = "engine option") -> None:
    """Raise one :class:`SlowthinkError` line for options engine ``kind`` does not have.

    >>> check_engine_options("openai", {"timeout_s": 30})
    >>> check_engine_options("llamacpp", {"timeout_s": 30})
    Traceback (most recent call last):
    ...
    slowthink.types.SlowthinkError: engine 'llamacpp' has no option 'timeout_s' (engine option); valid: min_p, n_batch, n_ctx, n_seq, n_threads, parallel, top_k, verbose
    """
    valid = engine_option_names(kind)
    for key in options:
        if key not in valid:
            raise SlowthinkError(
                f"engine '{kind}' has no option '{key}' ({where}); valid: {', '.join(sorted(valid))}"
            )


def merge_engine_options(spec_options: dict[str, Any], options: dict[str, Any], spec: str) -> dict[str, Any]:
    """Options of the spec string and of flags/YAML together; one given twice with different values is an error."""
    for key, value in options.items():
        if key in spec_options and spec_options[key] != value:
            raise SlowthinkError(
                f"engine option '{key}' given twice: {spec_options[key]!r} in the spec '{spec}' and {value!r} "
                "as a flag/YAML option; keep one"
            )
    return {**spec_options, **options}


@dataclass(frozen=True)
class EngineSpec:
    kind: str
    target: str | None = None
    fragment: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    """``key=value`` parts of the fragment (engine options), typed like YAML scalars."""

    @classmethod
    def parse(cls, spec: str) -> EngineSpec:
        """``kind[:target][#fragment][,key=value...]``; a bare path ending in ``.gguf`` means llamacpp.

        >>> EngineSpec.parse("openai:http://h:8000/v1#m,timeout_s=30,max_retries=2")
        EngineSpec(kind='openai', target='http://h:8000/v1', fragment='m', options=(('timeout_s', 30), ('max_retries', 2)))
        >>> EngineSpec.parse("llamacpp:/m/x.gguf#n_ctx=8192").fragment is None
        True
        """
        from slowthink.benchmarks.base import scalar

        spec = spec.strip()
        if not spec:
            raise SlowthinkError("empty engine spec: use e.g. 'llamacpp', 'hf:/path', 'openai:URL#model'")
        if spec.endswith(".gguf") and ":" not in spec.split("/", 1)[0]:
            return cls("llamacpp", spec)
        kind, _, rest = spec.partition(":")
        if kind not in ENGINES:
            raise SlowthinkError(f"unknown engine '{kind}' in spec '{spec}': choose one of {', '.join(ENGINES)}")
        target, _, fragment = rest.partition("#")
        plain, options = [], {}
        for part in fragment.split(",") if fragment else []:
            key, eq, value = part.partition("=")
            if not eq:
                plain.append(part)
                continue
            key = key.strip()
            if not key:
                raise SlowthinkError(f"bad engine option '{part}' in spec '{spec}': write key=value")
            if key in options:
                raise SlowthinkError(f"engine option '{key}' given twice in spec '{spec}'")
            options[key] = scalar(value)
        if options:
            check_engine_options(kind, options, where=f"in the spec '{spec}'")
        return cls(kind, target or None, ",".join(plain) or None, tuple(options.items()))


def strip_spec_options(spec: str) -> str:
    """The spec without its ``key=value`` options: what identifies the model (options such as
    ``timeout_s`` change how it is served, not what it answers).

    >>> strip_spec_options("openai:http://h/v1#m,timeout_s=30"), strip_spec_options("x.gguf")
    ('openai:http://h/v1#m', 'x.gguf')
    """
    head, sep, fragment = spec.partition("#")
    if not sep:
        return spec
    plain = [p for p in fragment.split(",") if "=" not in p]
    return head + ("#" + ",".join(plain) if plain else "")


def load_engine(spec: str | EngineSpec = "llamacpp", **options: Any) -> Engine:
    """Build an engine from a spec string; ``options`` go to the backend (n_threads, seed, and the
    engine's own options such as timeout_s); options in the spec are merged with them."""
    s = EngineSpec.parse(spec) if isinstance(spec, str) else spec
    merged = merge_engine_options(dict(s.options), options, str(spec))
    cls = _engine_class(s.kind)
    try:
        return cls.from_spec(s.target, s.fragment, **merged)
    except (ValueError, TypeError) as e:  # an option of the wrong type or range
        raise SlowthinkError(f"engine '{s.kind}': {e} (check the engine options and the spec '{spec}')") from None


__all__ = [
    "ENGINES",
    "Engine",
    "EngineSpec",
    "GENERIC_OPTIONS",
    "RecordingEngine",
    "apply_stop",
    "check_engine_options",
    "check_images",
    "engine_option_names",
    "load_engine",
    "merge_engine_options",
    "strip_spec_options",
]
