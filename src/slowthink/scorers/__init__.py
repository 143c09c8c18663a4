"""Scorers by name: who judges steps and candidates. Nothing here imports a model library.

Spec strings (CLI ``--scorer`` and YAML ``scorer:``)::

    judge                          LLM judge on the given engine (the policy's by default):
                                   pointwise P(yes) per step, pairwise stage verdicts, pre-check
    symbolic                       arithmetic checker (no model)
    prm:/path/to/folder            process reward model, protocol step_tag (Math-Shepherd input)
    prm:/path/to/folder#token_cls  process reward model with a token-classification head (TRL input)
    prm:PATH#qwen2.5-math-prm      ... with a known PRM family's input (presets: math-shepherd,
                                   atomthink, trl, qwen2.5-math-prm)
    prm:PATH#token_cls,chat=true,system="Be brief, exact."
                                   ... and PRMConfig fields after the protocol or preset
    judge+symbolic                 weighted mean of several step scorers (equal weights)
    judge:0.3+symbolic:0.7         ... with weights
    judge#swap=true                judge options after '#' (key=value, comma-separated)

Option values in double quotes may hold ``,``, ``+``, ``:`` and ``#`` (``system="a, b"``); an
empty value is an empty string (``system=``: no system turn). A path containing ``+`` cannot be
used in a combination. ``load_scorer`` options go to the parts
that know them (``swap=True`` to the judge, ``batch_size=4`` to a PRM, ...).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slowthink.options import parse_kv, scalar
from slowthink.scorers.aggregate import AGGREGATIONS, aggregate
from slowthink.scorers.base import (
    Comparison,
    PairwiseJudge,
    ReasoningChecker,
    ScoreQuery,
    Scorer,
    ScoreResult,
    StepCache,
    StepScorer,
    Verdict,
    charge,
    charge_call,
)
from slowthink.scorers.judge import JudgeConfig, LLMJudge
from slowthink.scorers.prm import PRESETS, PROTOCOLS, PRMConfig, PRMScorer
from slowthink.scorers.symbolic import SymbolicScorer, WeightedScorer
from slowthink.types import SlowthinkError


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


_QUOTED = re.compile(r'"[^"]*"')
_HIDDEN = {",": "\x01", "+": "\x02", ":": "\x03", "#": "\x04"}
"""Characters that separate spec parts, hidden while they sit inside double quotes."""


def _hide_quoted(spec: str) -> str:
    """``spec`` with the separators inside ``"..."`` hidden (see :func:`_unhide`)."""

    def hide(m: re.Match[str]) -> str:
        text = m.group(0)
        for ch, mark in _HIDDEN.items():
            text = text.replace(ch, mark)
        return text

    return _QUOTED.sub(hide, spec)


def _unhide(text: str) -> str:
    for ch, mark in _HIDDEN.items():
        text = text.replace(mark, ch)
    return text


def _fragment_options(name: str, fragment: str, valid: set[str]) -> dict[str, Any]:
    """``swap=true,top_logprobs=5`` -> options, typed like YAML (a value in double quotes stays
    the string inside them); unknown keys are one clear error."""
    raw = parse_kv(_hide_quoted(fragment), typed=False, what=f"'{name}' option")
    out = {}
    for key, value in raw.items():
        quoted = len(value) >= 2 and value[0] == value[-1] == '"'
        out[key.replace("-", "_")] = _unhide(value[1:-1]) if quoted else (scalar(value) if value else "")
    for key in out:
        if key not in valid:
            raise SlowthinkError(f"scorer '{name}' has no option '{key}'; valid: {', '.join(sorted(valid))}")
    return out


def _judge(target: str | None, fragment: str | None, engine: Any, opts: dict[str, Any]) -> Any:
    if target:
        raise SlowthinkError("scorer 'judge' takes no path: use 'judge' (it runs on the engine passed in)")
    if fragment:
        opts = {**_fragment_options("judge", fragment, _fields(JudgeConfig)), **opts}
    if engine is None:
        raise SlowthinkError("scorer 'judge' needs an engine to run on: pass engine=... (the policy engine)")
    return LLMJudge(engine, **opts)


def _symbolic(target: str | None, fragment: str | None, engine: Any, opts: dict[str, Any]) -> Any:
    if target or fragment:
        raise SlowthinkError("scorer 'symbolic' takes no path or options: use 'symbolic'")
    return SymbolicScorer()


def _prm(target: str | None, fragment: str | None, engine: Any, opts: dict[str, Any]) -> Any:
    if not target:
        raise SlowthinkError(
            "scorer 'prm' needs a model folder: 'prm:/path/to/folder#protocol-or-preset' "
            f"({'|'.join((*PROTOCOLS, *PRESETS))})"
        )
    if fragment:
        head, _, rest = _hide_quoted(fragment).partition(",")
        head = head.strip()
        if "=" in head:  # options only: the protocol stays the default
            head, rest = "", _hide_quoted(fragment)
        if head:
            key = "preset" if head in PRESETS else "protocol"
            if head not in PRESETS and head not in PROTOCOLS:
                raise SlowthinkError(
                    f"unknown PRM protocol or preset '{head}' in 'prm:{target}#{fragment}': choose one of "
                    f"{', '.join((*PROTOCOLS, *PRESETS))}"
                )
            opts = {**opts, key: head}
        if rest.strip():
            valid = _fields(PRMConfig) - {"protocol", "preset"}
            opts = {**_fragment_options("prm", _unhide(rest), valid), **opts}
    return PRMScorer(target, **opts)


@dataclass(frozen=True)
class ScorerEntry:
    build: Callable[[str | None, str | None, Any, dict[str, Any]], Any]
    options: Callable[[], set[str]]
    """Names of the options the scorer takes."""
    help: str


SCORERS: dict[str, ScorerEntry] = {
    "judge": ScorerEntry(_judge, lambda: _fields(JudgeConfig), "LLM judge on the engine"),
    "symbolic": ScorerEntry(_symbolic, set, "arithmetic checker, no model"),
    "prm": ScorerEntry(
        _prm,
        lambda: _fields(PRMConfig) - {"protocol", "preset"},
        "process reward model: prm:PATH#protocol-or-preset[,key=value...]",
    ),
}


def _parse_part(part: str) -> tuple[str, str | None, str | None, float | None]:
    """``name[:target][#fragment][:weight]`` -> (name, target, fragment, weight); ``part`` has
    its quoted separators hidden (:func:`_hide_quoted`), the target and fragment come back plain."""
    weight = None
    head, sep, tail = part.rpartition(":")
    if sep:
        try:
            weight = float(tail)
            part = head
        except ValueError:
            pass
    part, _, fragment = part.partition("#")
    name, _, target = part.partition(":")
    name = name.strip()
    if name not in SCORERS:
        raise SlowthinkError(
            f"unknown scorer '{name}' in '{part}': choose one of {', '.join(SCORERS)} "
            "(or combine them: 'judge+symbolic', 'judge:0.5+symbolic:0.5')"
        )
    if weight is not None and not weight > 0:
        raise SlowthinkError(f"scorer weight must be > 0, got {weight} in '{part}'")
    return name, _unhide(target).strip() or None, _unhide(fragment).strip() or None, weight


def load_scorer(spec: str, engine: Any = None, **opts: Any) -> Scorer:
    """Build a scorer from a spec string (see the module docstring).

    ``engine`` runs the LLM judge; ``opts`` go to the parts that take them, and an option no part
    takes is an error naming the valid ones.

    Example:
        >>> load_scorer("symbolic").name
        'symbolic'
        >>> load_scorer("symbolic:2+symbolic:1").name
        'symbolic+symbolic'
        >>> load_scorer("oracle")
        Traceback (most recent call last):
        ...
        slowthink.types.SlowthinkError: unknown scorer 'oracle' in 'oracle': choose one of judge, symbolic, prm (or combine them: 'judge+symbolic', 'judge:0.5+symbolic:0.5')
    """
    spec = (spec or "").strip()
    if not spec:
        raise SlowthinkError(f"empty scorer spec: choose one of {', '.join(SCORERS)}")
    parts = [_parse_part(p.strip()) for p in _hide_quoted(spec).split("+")]
    known = {name: SCORERS[name].options() for name, *_ in parts}
    unknown = set(opts) - set().union(*known.values())
    if unknown:
        valid = sorted(set().union(*known.values()))
        raise SlowthinkError(
            f"scorer '{spec}' takes no option {', '.join(sorted(unknown))}; valid: {', '.join(valid) or 'none'}"
        )
    built = []
    for name, target, fragment, weight in parts:
        mine = {k: v for k, v in opts.items() if k in known[name]}
        built.append((SCORERS[name].build(target, fragment, engine, mine), 1.0 if weight is None else weight))
    if len(built) == 1 and parts[0][3] is None:
        return built[0][0]
    return WeightedScorer(built)


__all__ = [
    "AGGREGATIONS",
    "SCORERS",
    "Comparison",
    "PairwiseJudge",
    "ReasoningChecker",
    "ScoreQuery",
    "ScoreResult",
    "Scorer",
    "StepCache",
    "StepScorer",
    "SymbolicScorer",
    "Verdict",
    "WeightedScorer",
    "aggregate",
    "charge",
    "charge_call",
    "load_scorer",
]
