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
DEFAULT_MODELS: tuple[str, ...] = ("quick", "majority?n=8", "stage_beam?n=4&scorer=judge", "step_beam?n=4&beam=2")



@dataclass(frozen=True)
class ModelChoice:
    """A parsed model name. ``options`` are the strategy overrides (sorted, hashable)."""

    name: str
    strategy: str
    options: tuple[tuple[str, Any], ...] = ()
    scorer: str | None = None
    format: str | None = None
    config: SearchConfig = field(default=None, compare=False, hash=False)  # type: ignore[assignment]

    def with_options(self, **overrides: Any) -> ModelChoice:
        """The same model with request-level overrides (``seed``, ``temperature``, ``max_tokens``)."""
        merged = dict(self.options) | {k: v for k, v in overrides.items() if v is not None}
        return parse_model(self.name, _options=merged, _format=self.format, _scorer=self.scorer)

    def scorer_spec(self) -> str | None:
        """The scorer to load: the named one, ``judge`` when the strategy needs one, else ``None``."""
        if self.scorer is not None:
            return self.scorer
        return "judge" if get_entry(self.strategy).needs(self.config) else None


def parse_model(
    name: str,
    *,
    _options: dict[str, Any] | None = None,
    _format: str | None = None,
    _scorer: str | None = None,
) -> ModelChoice:
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
    strategy = strategy.strip()
    options: dict[str, Any] = {}
    scorer, fmt = _scorer, _format
    if _options is None:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise SlowthinkError(
                f"bad model name '{name}': write STRATEGY?key=value&key=value (e.g. majority?n=8)"
            ) from None
        for key, value in pairs:
            if key in options or (key == "scorer" and scorer) or (key == "format" and fmt):
                raise SlowthinkError(f"model name '{name}' gives '{key}' twice; keep one")
            if key == "scorer":
                scorer = value
            elif key == "format":
                fmt = value
            else:
                options[key] = scalar(value)
    else:
        options = dict(_options)
    try:
        config = make_config(strategy, **options)
    except (TypeError, ValueError) as e:
        raise SlowthinkError(f"bad option in model '{name}': {e}") from None
    return ModelChoice(name, strategy, tuple(sorted(options.items())), scorer, fmt, config)


__all__ = ["DEFAULT_MODELS", "ModelChoice", "parse_model"]
