"""All prompt templates, by name, in one package.

``user`` holds the user turn every format, judge and PRM wrapper shares (:func:`user_prompt`);
``formats`` the reasoning-format prompts (stages, atomic, free) and the list of LLaVA-CoT
:data:`STAGES`; ``judge`` the judge and scorer prompts; ``grading`` the LLM grading judge's; ``prm``
the input wrappers of process reward models; ``analyze`` the capability classifier's; ``annotate`` the data engine's (with a version per mode). Templates are ``str.format`` strings; look them up
with :func:`get_template`. This package imports nothing of slowthink but :mod:`slowthink.types`,
so every role may use it.
"""

from __future__ import annotations

from slowthink.prompts import analyze, annotate, formats, grading, judge, prm, user
from slowthink.prompts.formats import STAGES
from slowthink.prompts.user import user_prompt

TEMPLATES: dict[str, str] = {
    **user.TEMPLATES,
    **formats.TEMPLATES,
    **grading.TEMPLATES,
    **judge.TEMPLATES,
    **prm.TEMPLATES,
    **analyze.TEMPLATES,
    **annotate.TEMPLATES,
}


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


__all__ = ["STAGES", "TEMPLATES", "clip_head", "clip_tail", "get_template", "user_prompt"]
