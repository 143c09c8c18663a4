"""Model names: a strategy and its settings in one string, as ``/v1/models`` lists them.

``NAME[?key=value&key=value]``: ``NAME`` is a strategy of :data:`slowthink.search.STRATEGIES`;
``scorer`` is a scorer spec (``judge``, ``symbolic``, ``prm:DIR``; a strategy that needs one and is
given none gets ``judge``), ``format`` a format spec (the server's ``--format`` by default); every
other key is a strategy option (``n``, ``beam``, ``select``, ...), typed like a CLI value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from slowthink.options import scalar
from slowthink.search import get_entry, make_config
from slowthink.search.base import SearchConfig
from slowthink.types import SlowthinkError

#: What ``/v1/models`` lists unless the server is given its own list (``--model-name``).
DEFAULT_MODELS: tuple[str, ...] = (
    "quick",
    "majority?n=8",
    "stage_beam?n=4&scorer=judge",
    "step_beam?n=4&beam=2",
)


@dataclass(frozen=True)
class ModelChoice:
    """A parsed model name. ``options`` are the strategy overrides (sorted, hashable)."""

    name: str
    strategy: str
    options: tuple[tuple[str, Any], ...] = ()
    scorer: str | None = None
    format: str | None = None
    config: SearchConfig = field(default=None, compare=False, hash=False)  # type: ignore[assignment]

    @classmethod
    def build(
        cls,
        name: str,
        strategy: str,
        options: dict[str, Any],
        scorer: str | None = None,
        fmt: str | None = None,
    ) -> ModelChoice:
        """The choice with its config built (``make_config`` checks the options)."""
        try:
            config = make_config(strategy, **options)
        except (TypeError, ValueError) as e:
            raise SlowthinkError(f"bad option in model '{name}': {e}") from None
        return cls(name, strategy, tuple(sorted(options.items())), scorer, fmt, config)

    def with_options(self, **overrides: Any) -> ModelChoice:
        """The same model with request-level overrides (``seed``, ``temperature``, ``max_tokens``)."""
        merged = dict(self.options) | {k: v for k, v in overrides.items() if v is not None}
        return ModelChoice.build(self.name, self.strategy, merged, self.scorer, self.format)

    def scorer_spec(self) -> str | None:
        """The scorer to load: the named one, ``judge`` when the strategy needs one, else ``None``."""
        if self.scorer is not None:
            return self.scorer
        return "judge" if get_entry(self.strategy).needs(self.config) else None


def parse_model(name: str) -> ModelChoice:
    """The strategy and settings a model name selects; a bad name is one SlowthinkError line.

    >>> m = parse_model("majority?n=8&temperature=0.5")
    >>> m.strategy, m.options, m.config.n
    ('majority', (('n', 8), ('temperature', 0.5)), 8)
    >>> parse_model("step_beam?n=4&beam=2&scorer=prm:/models/prm").scorer
    'prm:/models/prm'
    >>> parse_model("majority?m=8")
    Traceback (most recent call last):
    ...
    slowthink.types.SlowthinkError: strategy 'majority' has no option(s) m; options: n, temperature, top_p, seed, max_depth, max_tokens
    """
    strategy, _, query = name.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SlowthinkError(
            f"bad model name '{name}': write STRATEGY?key=value&key=value (e.g. majority?n=8)"
        ) from None
    options: dict[str, Any] = {}
    named: dict[str, str] = {}  # scorer, format
    for key, value in pairs:
        if key in options or key in named:
            raise SlowthinkError(f"model name '{name}' gives '{key}' twice; keep one")
        if key in ("scorer", "format"):
            named[key] = value
        else:
            options[key] = scalar(value)
    return ModelChoice.build(name, strategy.strip(), options, named.get("scorer"), named.get("format"))


__all__ = ["DEFAULT_MODELS", "ModelChoice", "parse_model"]
