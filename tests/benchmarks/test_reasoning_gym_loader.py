"""reasoning-gym tasks generated as problems (skipped when the extra is not installed)."""

from __future__ import annotations

import pytest

from slowthink.benchmarks import load_benchmark, score_reasoning_gym
from slowthink.types import SlowthinkError

CHAIN_SUM = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}


@pytest.fixture(scope="module")
def rg():
    return pytest.importorskip("reasoning_gym")


def test_chain_sum(rg) -> None:
    r = load_benchmark("reasoning-gym:chain_sum", size=10, seed=1234, **CHAIN_SUM)
    assert len(r) == 10 and not r.skipped
    ids = [p.id for p in r]
    assert ids[0] == "chain_sum-1234-0" and len(set(ids)) == 10
    for p in r:
        assert p.answer_type == "number" and p.meta["category"] == "chain_sum"
        assert p.meta["rg_entry"]["metadata"]["num_terms"] == 2
        assert p.meta["reasoning_gym"] == {
            "task": "chain_sum",
            "size": 10,
            "seed": 1234,
            "config": CHAIN_SUM,
            "index": ids.index(p.id),
        }
        assert score_reasoning_gym(p, p.answer) == 1.0
        assert score_reasoning_gym(p, str(int(p.answer) + 1)) == 0.0
        assert score_reasoning_gym(p, None) == 0.0


def test_same_seed_same_problems_and_config_string(rg) -> None:
    a = load_benchmark("reasoning-gym:chain_sum", size=10, seed=1234, **CHAIN_SUM)
    b = load_benchmark(
        "reasoning-gym:chain_sum",
        size=10,
        seed=1234,
        config="min_terms=2,max_terms=2,min_digits=1,max_digits=1",
    )
    c = load_benchmark("reasoning-gym:chain_sum", size=10, seed=99, **CHAIN_SUM)
    assert [p.question for p in a] == [p.question for p in b] != [p.question for p in c]
    assert len(load_benchmark("reasoning-gym:chain_sum", size=10, seed=1234, limit=3, **CHAIN_SUM)) == 3


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("reasoning-gym:no_such_task", {}, "not registered"),
        ("reasoning-gym:chain_sum", {"bogus": 1}, "bogus"),
        ("reasoning-gym:chain_sum", {"min_terms": 5, "max_terms": 2}, "max_terms"),
        ("reasoning-gym:chain_sum", {"size": 0}, "size must be a positive integer"),
        ("reasoning-gym:chain_sum", {"config": "min_terms=2", "min_terms": 2}, "given both"),
    ],
)
def test_errors(rg, name: str, options: dict, message: str) -> None:
    with pytest.raises(SlowthinkError, match=message):
        load_benchmark(name, **options)


def test_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from slowthink.benchmarks import reasoning_gym as mod

    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # import fails as if not installed
    mod._dataset.cache_clear()
    with pytest.raises(SlowthinkError, match=r"pip install 'slowthink\[bench\]'"):
        load_benchmark("reasoning-gym:chain_sum", size=2, seed=5)
