"""Formats by name."""

from __future__ import annotations

from slowthink.formats.atomic import AtomicFormat
from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec
from slowthink.formats.free import FreeFormat
from slowthink.formats.sentences import SentencesFormat
from slowthink.formats.stages import StagesFormat
from slowthink.options import parse_kv
from slowthink.types import SlowthinkError

FORMATS: dict[str, type[Format]] = {
    "stages": StagesFormat,
    "atomic": AtomicFormat,
    "free": FreeFormat,
    "sentences": SentencesFormat,
}


def get_format(spec: str) -> Format:
    """A format from its spec: a name, optionally with ``#k=v,...`` options
    (``atomic#style=atomthink,max_chars=600``); bad names or options raise one SlowthinkError line."""
    name, _, options = spec.partition("#")
    name = name.strip()
    try:
        fmt = FORMATS[name]()
    except KeyError:
        raise SlowthinkError(f"unknown format '{name}': choose one of {', '.join(FORMATS)}") from None
    fmt.configure(parse_kv(options, what=f"format option of '{name}'"))
    return fmt


__all__ = ["FORMATS", "Format", "Parsed", "ParsedStep", "StepSpec", "get_format"]
