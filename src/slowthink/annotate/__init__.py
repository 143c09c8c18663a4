"""The data engine: teacher annotation into LLaVA-CoT stages or AtomThink atomic steps, filters,
corrupted-step negatives and Monte-Carlo rollout step labels, written as SFT and PRM datasets.

::

    from slowthink.annotate import AnnotateConfig, run_annotate, read_dataset

    run_annotate(AnnotateConfig(mode="stages", teacher="openai:http://127.0.0.1:8000/v1#gpt-4o",
                                benchmark="math-v", limit=50, out="data/mathv-stages"))
    rows = read_dataset("data/mathv-stages/sft_llava.jsonl")

Modes (``modes/``, one file each): ``stages``, ``atomic-segment``, ``atomic-dynamic``,
``negatives``, ``rollout-labels``. Released datasets (LLaVA-CoT-100k, AMATH-SFT, AMATH-PRM,
PRM800K, Math-Shepherd) load into the same records with :func:`load_release`. Uses engines,
formats, grading and the search machinery; never ``evaluate/``.
"""

from __future__ import annotations

from slowthink.annotate.config import AnnotateConfig
from slowthink.annotate.datasets import (
    PRM,
    SFT_LLAVA,
    SFT_STEPS,
    LlavaSFTRow,
    PRMRow,
    StepSFTRow,
    read_dataset,
)
from slowthink.annotate.loaders import RELEASES, load_release
from slowthink.annotate.modes import MODES, get_mode
from slowthink.annotate.records import Annotation, Usage
from slowthink.annotate.runner import ANNOTATIONS, AnnotateResult, run_annotate, run_import

__all__ = [
    "ANNOTATIONS",
    "MODES",
    "PRM",
    "RELEASES",
    "SFT_LLAVA",
    "SFT_STEPS",
    "AnnotateConfig",
    "AnnotateResult",
    "Annotation",
    "LlavaSFTRow",
    "PRMRow",
    "StepSFTRow",
    "Usage",
    "get_mode",
    "load_release",
    "read_dataset",
    "run_annotate",
    "run_import",
]
