"""Engines by name. Backends import lazily: ``import slowthink.engines`` pulls in no model library.

Spec strings (CLI ``--engine`` / ``--model`` and YAML ``engine:``)::

    llamacpp                      embedded SmolLM2-135M-Instruct GGUF
    llamacpp:/path/model.gguf     any GGUF
    hf:/path/to/hf_folder         transformers (text or VLM); ``hf:/dir#file.gguf`` loads a GGUF
    openai:http://127.0.0.1:8000/v1#model-name   any OpenAI-compatible server
    openai:http://h1:8000/v1#M,http://h2:8000/v1#M   a pool of replicas (engines/openai/pool.py)
    vllm:/path/or/model-id        offline vLLM

Engine options ride in the fragment as ``key=value`` parts after the model (or alone)::

    openai:http://127.0.0.1:8000/v1#my-model,timeout_s=30,max_concurrency=4
    llamacpp:/path/model.gguf#n_ctx=8192

An ``openai`` spec lists one or more endpoints ``URL[#MODEL]`` and options, all separated by
commas (``openai:http://h1:8000/v1,http://h2:8000/v1#M,timeout_s=30``): a part starting with
``http://`` or ``https://`` begins another endpoint; a model named once serves every endpoint that
names none. In YAML, ``engine:`` may also be a list of openai specs (:func:`pool_spec`).

and the same options come from ``--engine-option key=value`` (and the named flags ``--api-key-env``,
``--timeout``, ``--max-concurrency``, ``--max-retries``) or YAML ``engine_options:``. Each engine kind
declares the options a user may set (:func:`engine_option_names`); an unknown one is an error naming
the valid ones, and an option given twice with different values is an error.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slowthink.engines.base import Engine, RecordingEngine, apply_stop, check_images
from slowthink.options import PY_PREFIX, scalar
from slowthink.types import SlowthinkError

# name -> "module:Class"; each class has ``from_spec(target, fragment, **options)``.
ENGINES: dict[str, str] = {
    "llamacpp": "slowthink.engines.llamacpp:LlamaCppEngine",
    "hf": "slowthink.engines.hf:HFEngine",
    "openai": "slowthink.engines.openai:OpenAIPool",  # one endpoint: OpenAIEngine; several: a pool
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
    """The options a user may set on engine ``kind``: the backend module's ``USER_OPTIONS``."""
    if kind not in ENGINES:
        raise SlowthinkError(f"unknown engine '{kind}': choose one of {', '.join(ENGINES)}")
    return frozenset(importlib.import_module(ENGINES[kind].partition(":")[0]).USER_OPTIONS)


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


def _add_option(options: dict[str, Any], part: str, spec: str) -> None:
    """Add one ``key=value`` part of an engine spec to ``options`` (typed like a YAML scalar)."""
    key, _, value = part.partition("=")
    key = key.strip()
    if not key:
        raise SlowthinkError(f"bad engine option '{part}' in spec '{spec}': write key=value")
    if key in options:
        raise SlowthinkError(f"engine option '{key}' given twice in spec '{spec}'")
    options[key] = scalar(value)


@dataclass(frozen=True)
class EngineSpec:
    kind: str
    target: str | None = None
    fragment: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    """``key=value`` parts of the fragment (engine options), typed like YAML scalars."""

    @property
    def endpoints(self) -> tuple[tuple[str, str | None], ...]:
        """An ``openai`` spec's endpoints ``(url, model)``: one for a plain spec, several for a pool
        (whose ``target`` lists them as ``URL#MODEL`` parts joined by commas).

        >>> EngineSpec.parse("openai:http://a/v1,http://b/v1#m,timeout_s=3").endpoints
        (('http://a/v1', 'm'), ('http://b/v1', 'm'))
        """
        if self.kind != "openai" or not self.target:
            return ()
        if "," not in self.target:
            return ((self.target, self.fragment),)
        out = []
        for part in self.target.split(","):
            url, _, model = part.partition("#")
            out.append((url, model or None))
        return tuple(out)

    @classmethod
    def parse(cls, spec: str) -> EngineSpec:
        """``kind[:target][#fragment][,key=value...]``; a bare path ending in ``.gguf`` means llamacpp.

        >>> EngineSpec.parse("openai:http://h:8000/v1#m,timeout_s=30,max_retries=2")
        EngineSpec(kind='openai', target='http://h:8000/v1', fragment='m', options=(('timeout_s', 30), ('max_retries', 2)))
        >>> EngineSpec.parse("llamacpp:/m/x.gguf#n_ctx=8192").fragment is None
        True
        """
        spec = spec.strip()
        if not spec:
            raise SlowthinkError("empty engine spec: use e.g. 'llamacpp', 'hf:/path', 'openai:URL#model'")
        if spec.endswith(".gguf") and ":" not in spec.split("/", 1)[0]:
            return cls("llamacpp", spec)
        kind, _, rest = spec.partition(":")
        if kind not in ENGINES:
            raise SlowthinkError(
                f"unknown engine '{kind}' in spec '{spec}': choose one of {', '.join(ENGINES)}"
            )
        if kind == "openai":
            return cls._parse_openai(spec, rest)
        target, _, fragment = rest.partition("#")
        plain, options = [], {}
        for part in fragment.split(",") if fragment else []:
            if "=" not in part:
                plain.append(part)
                continue
            _add_option(options, part, spec)
        if options:
            check_engine_options(kind, options, where=f"in the spec '{spec}'")
        return cls(kind, target or None, ",".join(plain) or None, tuple(options.items()))

    @classmethod
    def _parse_openai(cls, spec: str, rest: str) -> EngineSpec:
        """``URL[#MODEL][,URL[#MODEL]...][,key=value...]`` (the first part is always an endpoint;
        ``URL#key=value`` is an endpoint without model followed by an option)."""
        grammar = (
            "an openai spec lists endpoints 'http://HOST:PORT/v1[#MODEL]' and options 'key=value', "
            "separated by commas"
        )
        endpoints: list[tuple[str, str | None]] = []
        options: dict[str, Any] = {}

        def option(part: str) -> None:
            _add_option(options, part, spec)

        for k, part in enumerate(rest.split(",") if rest else []):
            if k == 0 or part.strip().startswith(("http://", "https://")):
                url, _, model = part.strip().partition("#")
                if "=" in model:
                    option(model)
                    model = ""
                if k > 0 and not model.strip() and not url:
                    raise SlowthinkError(f"bad endpoint '{part}' in the engine spec '{spec}': {grammar}")
                endpoints.append((url, model.strip() or None))
            elif "=" in part:
                option(part)
            else:
                raise SlowthinkError(f"bad part '{part}' in the engine spec '{spec}': {grammar}")
        if options:
            check_engine_options("openai", options, where=f"in the spec '{spec}'")
        if len(endpoints) <= 1:
            url, model = endpoints[0] if endpoints else ("", None)
            return cls("openai", url or None, model, tuple(options.items()))
        urls = [url.rstrip("/") for url, _ in endpoints]
        for url in urls:
            if not url:
                raise SlowthinkError(f"an endpoint of the engine spec '{spec}' has no URL: {grammar}")
            if urls.count(url) > 1:
                raise SlowthinkError(
                    f"endpoint {url} is listed twice in the engine spec '{spec}': list each server once"
                )
        named = sorted({m for _, m in endpoints if m})
        if len(named) > 1 and any(m is None for _, m in endpoints):
            raise SlowthinkError(
                f"the engine spec '{spec}' names several models ({', '.join(named)}) and some endpoints none: "
                "name the model on every endpoint, or once for all"
            )
        once = named[0] if len(named) == 1 else None
        target = ",".join(f"{url}#{m or once}" if (m or once) else url for url, m in endpoints)
        return cls("openai", target, None, tuple(options.items()))


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


def engine_identity(spec: str) -> str:
    """What a run's identity records of its engine: the model, not how or where it is served.

    The spec without its options (:func:`strip_spec_options`); for an ``openai`` spec whose
    endpoints all name their model, ``openai#MODEL`` whatever the servers, their order or count (a
    run may move from one server to a pool of replicas and back); without model names, the sorted
    endpoints.

    >>> engine_identity("openai:http://b/v1#m,http://a/v1#m,timeout_s=3"), engine_identity("openai:http://h/v1#m")
    ('openai#m', 'openai#m')
    >>> engine_identity("openai:http://b/v1,http://a/v1"), engine_identity("llamacpp:/x.gguf#n_ctx=512")
    ('openai:http://a/v1,http://b/v1', 'llamacpp:/x.gguf')
    """
    s = EngineSpec.parse(spec)
    endpoints = s.endpoints
    if not endpoints:
        return strip_spec_options(spec)
    models = sorted({m for _, m in endpoints if m})
    if models and all(m for _, m in endpoints):
        return "openai#" + ",".join(models)
    return "openai:" + ",".join(sorted(url.rstrip("/") + (f"#{m}" if m else "") for url, m in endpoints))


def key_env_names(specs: Sequence[str | None], options: Mapping[str, Any]) -> tuple[str, ...]:
    """The environment variables the engines of ``specs`` (with the shared ``options``) read an API
    key from: ``api_key_env`` in the options or in a spec (``py:`` objects have none).

    >>> key_env_names(["openai:http://a/v1#m,api_key_env=A", None, "llamacpp"], {"api_key_env": "B"})
    ('B', 'A')
    """
    names = [options.get("api_key_env")]
    names += [
        dict(EngineSpec.parse(s).options).get("api_key_env")
        for s in specs
        if s and not s.startswith(PY_PREFIX)
    ]
    return tuple(dict.fromkeys(str(n) for n in names if n))


def pool_spec(specs: str | Sequence[str]) -> str:
    """One spec out of a YAML ``engine:`` list of ``openai`` specs (an engine pool); a string is
    returned as is. An option repeated with the same value is kept once.

    >>> pool_spec(["openai:http://a/v1#m,timeout_s=3", "openai:http://b/v1#m,timeout_s=3"])
    'openai:http://a/v1#m,timeout_s=3,http://b/v1#m'
    """
    if isinstance(specs, str):
        return specs
    if not isinstance(specs, (list, tuple)):
        raise SlowthinkError(f"engine: expected an engine spec or a list of openai specs, got {specs!r}")
    items = [str(s).strip() for s in specs]
    if not items:
        raise SlowthinkError("engine: the list of engine specs is empty: list 'openai:URL#MODEL' specs")
    parts: list[str] = []
    for item in items:
        if EngineSpec.parse(item).kind != "openai":
            raise SlowthinkError(
                f"engine: a list of engines is a pool of OpenAI-compatible servers, but '{item}' is not an "
                "openai spec: list 'openai:URL#MODEL' specs, or give one engine spec"
            )
        for part in item.partition(":")[2].split(","):
            option = "=" in part and not part.strip().startswith(("http://", "https://"))
            if not (option and part in parts):
                parts.append(part)
    return "openai:" + ",".join(parts)


def load_engine(spec: str | EngineSpec = "llamacpp", **options: Any) -> Engine:
    """Build an engine from a spec string; ``options`` go to the backend (n_threads, seed, and the
    engine's own options such as timeout_s); options in the spec are merged with them."""
    s = EngineSpec.parse(spec) if isinstance(spec, str) else spec
    merged = merge_engine_options(dict(s.options), options, str(spec))
    cls = _engine_class(s.kind)
    try:
        return cls.from_spec(s.target, s.fragment, **merged)
    except (ValueError, TypeError) as e:  # an option of the wrong type or range
        raise SlowthinkError(
            f"engine '{s.kind}': {e} (check the engine options and the spec '{spec}')"
        ) from None


__all__ = [
    "ENGINES",
    "Engine",
    "EngineSpec",
    "GENERIC_OPTIONS",
    "RecordingEngine",
    "apply_stop",
    "check_engine_options",
    "check_images",
    "engine_identity",
    "engine_option_names",
    "key_env_names",
    "load_engine",
    "merge_engine_options",
    "pool_spec",
    "strip_spec_options",
]
