"""Presets: a paper's procedure end to end, as one name (``--preset llava-cot``).

A preset names the strategy it is for and fills in the format, the scorer and strategy options the
user left unset; whatever the user gives explicitly wins. ``slowthink solve`` and ``slowthink eval``
take ``--preset``; in Python, :func:`apply_preset` returns the filled-in values.

``llava-cot`` (``--strategy stage_beam``): LLaVA-CoT's stage-level beam search as its public
inference code runs it (see docs/ARCHITECTURE.md, "LLaVA-CoT stage search", for every departure):
N samples per stage at temperature 0.6, top-p 0.9; the pool knockout (two random candidates, the
winner back into the pool; N-1 comparisons); LLaVA-CoT's judge prompts with the reason-first reply
"Since [reason], I choose response [1/2]."; the reasoning check inside every REASONING comparison;
LLaVA-CoT's stage descriptions as the policy's system prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slowthink.types import SlowthinkError


@dataclass(frozen=True)
class Preset:
    name: str
    strategy: str
    """The strategy the preset configures (others in the same run are left alone)."""
    format: str
    """Format spec used when the user gives none."""
    scorer: str
    """Scorer spec used when the user gives none."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Strategy options used where the user gives none."""
    summary: str = ""


PRESETS: dict[str, Preset] = {
    "llava-cot": Preset(
        name="llava-cot",
        strategy="stage_beam",
        format="stages#style=llava-cot",
        scorer="judge#prompts=llava-cot",
        options={"select": "judge", "pairing": "pool", "precheck": True, "temperature": 0.6, "top_p": 0.9},
        summary="LLaVA-CoT stage-level beam search: pool knockout, its judge prompts (reason first), "
        "the reasoning check in every REASONING comparison, its stage prompts, T=0.6 / top-p 0.9",
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SlowthinkError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}") from None


@dataclass
class Applied:
    """What a preset resolves to: the format and scorer specs, and the preset strategy's options."""

    format: str
    scorer: str
    options: dict[str, Any]


def apply_preset(
    name: str, strategies: Sequence[str], *, fmt: str | None, scorer: str | None, options: Mapping[str, Any]
) -> Applied:
    """Fill the preset's values in where the user gave none (``None``).

    Example:
        >>> a = apply_preset("llava-cot", ["stage_beam"], fmt=None, scorer=None, options={"n": 4, "temperature": 1.0})
        >>> a.format, a.scorer, a.options["pairing"], a.options["temperature"], a.options["n"]
        ('stages#style=llava-cot', 'judge#prompts=llava-cot', 'pool', 1.0, 4)
    """
    preset = get_preset(name)
    if preset.strategy not in strategies:
        raise SlowthinkError(
            f"preset '{name}' is for --strategy {preset.strategy}, got {', '.join(strategies) or 'none'}; "
            f"add --strategy {preset.strategy}"
        )
    given = {k: v for k, v in options.items() if v is not None}
    return Applied(fmt or preset.format, scorer or preset.scorer, {**preset.options, **given})
