"""Formats by name."""

from __future__ import annotations

from slowthink.formats.atomic import AtomicFormat
from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec
from slowthink.formats.free import FreeFormat
from slowthink.formats.sentences import SentencesFormat
from slowthink.formats.stages import StagesFormat
from slowthink.types import SlowthinkError

FORMATS: dict[str, type[Format]] = {
    "stages": StagesFormat,
    "atomic": AtomicFormat,
    "free": FreeFormat,
    "sentences": SentencesFormat,
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]()
    except KeyError:
        raise SlowthinkError(f"unknown format '{name}': choose one of {', '.join(FORMATS)}") from None


__all__ = ["FORMATS", "Format", "Parsed", "ParsedStep", "StepSpec", "get_format"]
