"""Engine specs with options (``openai:URL#model,timeout_s=30``) and per-engine option checks."""

from __future__ import annotations

import pytest

from slowthink.engines import EngineSpec, check_engine_options, load_engine, strip_spec_options
from slowthink.types import SlowthinkError


def test_spec_options_are_split_from_the_model_and_typed():
    s = EngineSpec.parse(
        "openai:http://h:8000/v1#org/model-7b,timeout_s=2.5,max_retries=0,prefix_mode=completions"
    )
    assert (s.kind, s.target, s.fragment) == ("openai", "http://h:8000/v1", "org/model-7b")
    assert dict(s.options) == {"timeout_s": 2.5, "max_retries": 0, "prefix_mode": "completions"}
    assert EngineSpec.parse("hf:/m#model.gguf").fragment == "model.gguf"
    assert EngineSpec.parse("openai:http://h/v1#timeout_s=3").fragment is None
    assert strip_spec_options("openai:http://h/v1#timeout_s=3") == "openai:http://h/v1"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("openai:http://h/v1#m,timeout=3", "has no option 'timeout'"),
        ("openai:http://h/v1#m,timeout_s=1,timeout_s=2", "given twice"),
        ("openai:http://h/v1#m,=3", "write key=value"),
        ("llamacpp:/x.gguf#max_retries=2", "engine 'llamacpp' has no option 'max_retries'"),
    ],
)
def test_bad_spec_options_are_one_clear_error(spec, needle):
    with pytest.raises(SlowthinkError, match=needle):
        EngineSpec.parse(spec)


def test_options_of_the_spec_and_of_flags_meet_in_the_engine():
    engine = load_engine("openai:http://127.0.0.1:9/v1#m,timeout_s=4", max_concurrency=2, n_threads=1)
    assert (engine.options.timeout_s, engine.options.max_concurrency, engine.model) == (4, 2, "m")
    with pytest.raises(SlowthinkError, match="given twice"):
        load_engine("openai:http://127.0.0.1:9/v1#m,timeout_s=4", timeout_s=5)
    with pytest.raises(SlowthinkError, match="max_concurrency must be >= 1"):
        load_engine("openai:http://127.0.0.1:9/v1#m", max_concurrency=0)


def test_every_engine_declares_its_options():
    for kind, must in {
        "llamacpp": "n_ctx",
        "hf": "dtype",
        "vllm": "max_model_len",
        "openai": "timeout_s",
    }.items():
        check_engine_options(kind, {must: 1})
        with pytest.raises(SlowthinkError, match=f"engine '{kind}' has no option 'nonsense'"):
            check_engine_options(kind, {"nonsense": 1})
