"""``key=value`` option strings, shared by every spec and flag that takes them.

Format specs (``atomic#style=atomthink``), engine and scorer spec fragments, benchmark loader options
(``reasoning-gym:chain_sum#min_terms=2``), field mappings, strategy overrides and
``--engine-option`` all read ``a=1,b=x`` with :func:`parse_kv` and type a value like YAML with
:func:`scalar`.
"""

from __future__ import annotations

import importlib
from typing import Any

from slowthink.types import SlowthinkError


def scalar(text: str) -> Any:
    """A CLI value typed like YAML: ``"2"`` -> 2, ``"true"`` -> True, ``"a b"`` -> ``"a b"``.

    >>> scalar("2"), scalar("0.5"), scalar("true"), scalar("none"), scalar("chain_sum")
    (2, 0.5, True, None, 'chain_sum')
    """
    s = text.strip()
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null", "~"):
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def parse_kv(spec: str, *, typed: bool = True, what: str = "option") -> dict[str, Any]:
    """Parse ``"a=1,b=x"`` into ``{"a": 1, "b": "x"}`` (values typed by :func:`scalar` when ``typed``).

    >>> parse_kv("min_terms=2,max_terms=2")
    {'min_terms': 2, 'max_terms': 2}
    >>> parse_kv("question=problem, answer=solution", typed=False)
    {'question': 'problem', 'answer': 'solution'}
    """
    out: dict[str, Any] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SlowthinkError(
                f"bad {what} '{part.strip()}' in '{spec}': write key=value pairs separated by commas"
            )
        if key in out:
            raise SlowthinkError(f"{what} '{key}' given twice in '{spec}'")
        out[key] = scalar(value) if typed else value.strip()
    return out


PY_PREFIX = "py:"
"""Spec prefix of an engine or scorer given as an importable class: ``py:module.path:Class#k=v,k=v``
(the fragment's options go to the constructor). Used by tests to plug in scripted doubles."""


def load_py_object(spec: str, **kwargs: Any) -> Any:
    """Build ``Class(**options, **kwargs)`` from ``py:module.path:Class#k=v,k=v``."""
    body, _, frag = spec[len(PY_PREFIX) :].partition("#")
    module_name, _, cls_name = body.rpartition(":")
    if not module_name or not cls_name:
        raise SlowthinkError(f"bad spec '{spec}': write py:module.path:Class")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise SlowthinkError(
            f"cannot import {cls_name} from {module_name} ({e}); check the spec '{spec}'"
        ) from None
    return cls(**(parse_kv(frag) if frag else {}), **kwargs)
