"""``sentence_beam``: the stage-level machinery over sentences (LLaVA-CoT's sentence-level
baseline). The response of the given format is generated one sentence per step; at each sentence
``n`` candidates compete in a judge knockout (the judge's sentence prompt), or by step score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.formats.sentences import SentencesFormat
from slowthink.scorers.base import Scorer
from slowthink.search import stage_beam
from slowthink.types import Problem, Trace


@dataclass
class SentenceBeamConfig(stage_beam.StageBeamConfig):
    max_depth: int = 16
    """Most sentences in the response."""


def run(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: SentenceBeamConfig, scorer: Scorer
) -> list[Trace]:
    sentences = fmt if isinstance(fmt, SentencesFormat) else SentencesFormat(fmt)
    return stage_beam.run(problems, engine, sentences, config, scorer, name="sentence_beam")
