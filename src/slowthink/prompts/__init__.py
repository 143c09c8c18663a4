"""All prompt templates, by name, in one package.

``formats`` holds the reasoning-format prompts (stages, atomic, free); ``judge`` holds the judge and
scorer prompts; ``grading`` the LLM grading judge's; ``prm`` the
input wrappers of process reward models; ``annotate`` the data engine's (with a version per mode). Templates are ``str.format`` strings; look them up with :func:`get_template`.
"""

from __future__ import annotations

from slowthink.prompts import annotate as _annotate
from slowthink.prompts import formats as _formats
from slowthink.prompts import grading as _grading
from slowthink.prompts import prm as _prm

TEMPLATES: dict[str, str] = {}
TEMPLATES.update(_formats.TEMPLATES)
TEMPLATES.update(_grading.TEMPLATES)
TEMPLATES.update(_prm.TEMPLATES)
TEMPLATES.update(_annotate.TEMPLATES)
try:  # judge prompts are added by the scorers package
    from slowthink.prompts import judge as _judge

    TEMPLATES.update(_judge.TEMPLATES)
except ImportError:  # pragma: no cover
    pass


def get_template(name: str) -> str:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown prompt template '{name}'; known: {', '.join(sorted(TEMPLATES))}") from None


def clip_head(text: str, limit: int) -> str:
    """``text`` stripped, cut to its first ``limit`` characters with a ``[...]`` mark (prompt budgets)."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " [...]"


def clip_tail(text: str, limit: int) -> str:
    """``text`` stripped, cut to its last ``limit`` characters with a ``[...]`` mark."""
    text = text.strip()
    return text if len(text) <= limit else "[...] " + text[-limit:].lstrip()
