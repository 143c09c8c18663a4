"""Annotation modes by name; one file each. ``get_mode(name)`` or one error line naming the valid ones."""

from __future__ import annotations

from slowthink.annotate.modes.atomic_dynamic import AtomicDynamicMode
from slowthink.annotate.modes.atomic_segment import AtomicSegmentMode
from slowthink.annotate.modes.base import Mode, ModeContext, ModeOptions
from slowthink.annotate.modes.negatives import NegativesMode
from slowthink.annotate.modes.rollout_labels import RolloutLabelsMode
from slowthink.annotate.modes.stages import StagesMode
from slowthink.types import SlowthinkError

MODES: dict[str, type[Mode]] = {
    m.name: m for m in (StagesMode, AtomicSegmentMode, AtomicDynamicMode, NegativesMode, RolloutLabelsMode)
}


def get_mode(name: str) -> Mode:
    try:
        return MODES[name]()
    except KeyError:
        raise SlowthinkError(f"unknown annotate mode '{name}': choose one of {', '.join(MODES)}") from None


__all__ = ["MODES", "Mode", "ModeContext", "ModeOptions", "get_mode"]
