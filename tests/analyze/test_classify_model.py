"""The LLM classifier on the real embedded SmolLM2-135M (llama.cpp): one engine call for all
batches, every label a capability of the set, fallbacks counted. SmolLM2 is a weak annotator: this
asserts behaviour, never agreement (agreement is tested on the rules and a scripted engine)."""

from __future__ import annotations

import pytest

from slowthink.analyze import LLMClassifier, RulesClassifier, load_capabilities
from slowthink.engines.base import RecordingEngine
from tests.analyze.labelled import LABELLED

pytestmark = pytest.mark.model


def test_llm_classifier_on_the_embedded_model(smol_engine) -> None:
    caps = load_capabilities()
    engine = RecordingEngine(smol_engine)
    texts = [t for t, _ in LABELLED[:10]]
    out = LLMClassifier(caps, engine, batch=5).classify(texts)
    assert engine.n_calls == 1 and engine.calls[0].n_requests == 2
    assert len(out.labels) == 10 and set(out.labels) <= set(caps.names)
    assert 0 <= out.fallbacks <= 10 and out.calls == 1 and out.generated_tokens > 0
    rules = RulesClassifier(caps).classify(texts).labels
    # a step the model did not label is labelled by the rules
    assert out.fallbacks < 10 or out.labels == rules
