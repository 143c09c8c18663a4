"""``--scorer rollouts``: each step's Monte-Carlo rollout label (Math-Shepherd), by the data engine.

A step's score is the label the data engine's rollout labeller
(:func:`slowthink.annotate.modes.rollout_labels.label_chains`) gives it on its chosen path: ``k``
completions by a policy engine continue the solution from after the step (the prefix *includes*
the step); ``label=soft`` scores the share of them reaching the gold answer, ``label=hard`` 1 when
any does. A final step stating an answer is scored by grading that answer. Every uncached path of
every run goes to the labeller at once: one engine call for all prefixes.

Results are cached in a JSONL file (``rollouts_cache.jsonl`` of the output folder): one line per
path, keyed by the policy, the problem, the path and the rollout settings (not ``label``: the soft
labels are kept, the hard ones follow from them), so a rerun rolls nothing out again and switching
``label`` is free. A path the policy failed on is unscored and not cached (the next run retries it);
a problem without a gold answer is unscored.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slowthink.analyze.steps import Step
from slowthink.annotate.modes.rollout_labels import RolloutOptions, label_chains
from slowthink.engines import Engine
from slowthink.options import parse_kv
from slowthink.types import SlowthinkError

NAME = "rollouts"
CACHE = "rollouts_cache.jsonl"
RUN_CONFIG = "config.json"


@dataclass(frozen=True)
class RolloutSettings:
    """The options of ``rollouts#k=8,label=soft,temperature=0.7,max_tokens=256,seed=0``."""

    k: int = 8
    """Completions per step prefix."""
    label: Literal["soft", "hard"] = "soft"
    """soft: share of completions reaching the gold answer; hard: 1 when any does."""
    temperature: float = 0.7
    max_tokens: int = 256
    """Token budget of one completion (the rest of a solution)."""
    seed: int = 0

    @property
    def spec(self) -> str:
        return f"{NAME}#k={self.k},label={self.label}"


_TYPES: dict[str, type] = {"k": int, "label": str, "temperature": float, "max_tokens": int, "seed": int}


def is_rollouts(spec: str) -> bool:
    return spec.strip().partition("#")[0].strip() == NAME


def parse_rollouts(spec: str) -> RolloutSettings:
    """``rollouts`` or ``rollouts#k=4,label=hard``; a bad option is one error naming the valid ones."""
    name, _, frag = spec.strip().partition("#")
    if name.strip() != NAME:
        raise SlowthinkError(f"not a rollouts scorer spec: '{spec}' (write rollouts#k=8,label=soft)")
    raw = parse_kv(frag, what="rollouts option") if frag.strip() else {}
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        want = _TYPES.get(key)
        if want is None:
            raise SlowthinkError(f"scorer '{spec}' has no option '{key}'; valid: {', '.join(sorted(_TYPES))}")
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            raise SlowthinkError(f"scorer '{spec}': {key} must be {want.__name__}, got {value!r}")
        kw[key] = float(value) if want is float else value
    s = RolloutSettings(**kw)
    if s.label not in ("soft", "hard"):
        raise SlowthinkError(f"scorer '{spec}': label must be soft or hard, got {s.label!r}")
    if s.k < 1 or s.max_tokens < 1 or s.temperature < 0:
        raise SlowthinkError(f"scorer '{spec}': k and max_tokens must be >= 1 and temperature >= 0")
    return s


@dataclass
class RolloutScorer:
    """Scores steps by their rollout labels; ``cost`` tells what the last :meth:`score_steps` did."""

    policy: Engine
    settings: RolloutSettings = field(default_factory=RolloutSettings)
    cost: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.settings.spec} by {self.policy.name}"

    def key(self, step: Step, chain: Sequence[str]) -> str:
        s, p = self.settings, step.problem
        ident = {
            "policy": self.policy.name,
            "problem": [p.id, p.question, p.images, p.choices, p.answer, p.answer_type],
            "chain": list(chain),
            "rollout": [s.k, s.temperature, s.max_tokens, s.seed],
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]

    def score_steps(self, steps: Sequence[Step], cache: Path) -> list[float | None]:
        """The score of each step (``None``: unscored), rolling out only the paths not in ``cache``."""
        paths: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
        for i, s in enumerate(steps):
            paths[(s.run, s.problem.id, s.strategy, s.key)].append(i)
        chains = {k: [*steps[ix[0]].history, *(steps[i].text for i in ix)] for k, ix in paths.items()}
        keys = {k: self.key(steps[ix[0]], chains[k]) for k, ix in paths.items()}
        known = read_cache(cache)
        todo = [
            k for k in paths if keys[k] not in known and (steps[paths[k][0]].problem.answer or "").strip()
        ]
        fresh = {keys[k] for k in todo}
        self.cost = {"paths": len(paths), "rolled_out": len(fresh), "cached": 0, "failed": 0, "no_answer": 0}
        self.cost.update(calls=0, prompt_tokens=0, generated_tokens=0)
        if todo:
            s = self.settings
            opts = RolloutOptions(k=s.k, temperature=s.temperature, max_tokens=s.max_tokens)
            unique = {keys[k]: k for k in todo}  # one rollout per distinct (problem, path)
            anns = label_chains(
                [(steps[paths[k][0]].problem, chains[k]) for k in unique.values()], self.policy, opts, s.seed
            )
            with Path(cache).open("a", encoding="utf-8") as f:
                for key, a in zip(unique, anns):
                    self.cost["prompt_tokens"] += a.usage.prompt_tokens
                    self.cost["generated_tokens"] += a.usage.generated_tokens
                    if a.status != "accepted" or a.soft_labels is None:
                        continue
                    known[key] = [float(x) for x in a.soft_labels]
                    f.write(json.dumps({"key": key, "soft": known[key]}) + "\n")
            self.cost["calls"] = max((a.usage.calls for a in anns), default=0)
        out: list[float | None] = [None] * len(steps)
        for k, ix in paths.items():
            soft = known.get(keys[k])
            if soft is None:
                no_answer = not (steps[ix[0]].problem.answer or "").strip()
                self.cost["no_answer" if no_answer else "failed"] += 1
                continue
            self.cost["cached"] += keys[k] not in fresh
            for i in ix:  # a path's steps from its first: position = step index
                j = steps[i].index
                x = soft[j] if j < len(soft) else None
                out[i] = x if x is None or self.settings.label == "soft" else float(x > 0)
        return out


def read_cache(path: Path) -> dict[str, list[float]]:
    """The cached soft labels by key; an unreadable line (a run killed mid-write) is skipped."""
    out: dict[str, list[float]] = {}
    if not Path(path).is_file():
        return out
    with Path(path).open("rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
                out[str(rec["key"])] = [float(x) for x in rec["soft"]]
            except (ValueError, KeyError, TypeError):
                continue
    return out


def run_policy(runs: Sequence[Path]) -> tuple[str, dict[str, Any]]:
    """The engine spec and engine options the runs were made with (their ``config.json``; the
    embedded ``llamacpp`` when a run has none); runs made with different engines are an error."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        path = Path(run) / RUN_CONFIG
        if not path.is_file():
            found.setdefault("llamacpp", {})
            continue
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))["config"]
            engine, model = str(cfg.get("engine") or "llamacpp"), cfg.get("model")
            options = dict(cfg.get("engine_options") or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise SlowthinkError(
                f"cannot read the engine of {run} from {path} ({e}); pass --policy ENGINE_SPEC"
            ) from None
        spec = engine if model is None or ":" in engine else f"{engine}:{model}"
        found.setdefault(spec, options)
    if len(found) > 1:
        raise SlowthinkError(
            f"the runs were made with different engines ({', '.join(found)}): pass --policy ENGINE_SPEC"
        )
    return next(iter(found.items()))
