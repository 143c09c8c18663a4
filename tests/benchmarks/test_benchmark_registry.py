"""load_benchmark: names, options, paths, limit, and the CLI option parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slowthink.benchmarks import BENCHMARKS, LoadResult, load_benchmark, parse_options
from slowthink.types import Problem, SlowthinkError


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(5)))
    return f


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(SlowthinkError) as e:
        load_benchmark("mathvistaa")
    msg = str(e.value)
    assert "unknown benchmark 'mathvistaa'" in msg
    for name in ("gsm8k", "math-v", "mathverse", "mathvista", "mmstar", "jsonl", "reasoning-gym"):
        assert name in msg


def test_registry_has_every_loader() -> None:
    assert {
        "mathvista",
        "mathverse",
        "math-v",
        "gsm8k",
        "reasoning-gym",
        "mmstar",
        "jsonl",
        "math500",
    } <= set(BENCHMARKS)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("reasoning-gym", "needs a task"),  # no :TASK
        ("gsm8k:x", "takes no ':x' suffix"),
    ],
)
def test_bad_name_forms(name: str, message: str) -> None:
    with pytest.raises(SlowthinkError, match=message):
        load_benchmark(name)


def test_unknown_option(tiny: Path) -> None:
    with pytest.raises(SlowthinkError, match="has no option 'colour'; valid options: .*fields"):
        load_benchmark("jsonl", tiny, colour="red")


def test_limit(tiny: Path) -> None:
    assert [p.answer for p in load_benchmark("jsonl", tiny, limit=2)] == ["0", "1"]
    for bad in (0, -1, "3"):
        with pytest.raises(SlowthinkError, match="limit must be a positive integer"):
            load_benchmark("jsonl", tiny, limit=bad)


def test_missing_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SlowthinkError, match="does not exist"):
        load_benchmark("gsm8k", tmp_path / "nope.jsonl")
    with pytest.raises(SlowthinkError, match="holds none of: test.jsonl"):
        load_benchmark("gsm8k", tmp_path)
    monkeypatch.setenv("SLOWTHINK_DATA", str(tmp_path))
    with pytest.raises(SlowthinkError, match="set SLOWTHINK_DATA"):
        load_benchmark("math-v")
    with pytest.raises(SlowthinkError, match="needs a path"):
        load_benchmark("jsonl")


def test_category_by(tiny: Path) -> None:
    r = load_benchmark("jsonl", tiny, category_by="benchmark")
    assert r.by_category() == {"jsonl": 5}
    with pytest.raises(SlowthinkError, match="has no meta 'level'"):
        load_benchmark("jsonl", tiny, category_by="level")


def test_every_problem_has_category_and_benchmark(tiny: Path) -> None:
    for p in load_benchmark("jsonl", tiny):
        assert p.meta["category"] == "jsonl" and p.meta["benchmark"] == "jsonl"


def test_math500_preset(tmp_path: Path) -> None:
    f = tmp_path / "math500" / "test.jsonl"
    f.parent.mkdir()
    rec = {
        "problem": "Compute $1+1$.",
        "solution": "... $\\boxed{2}$",
        "answer": "2",
        "subject": "Algebra",
        "level": 1,
        "unique_id": "test/algebra/1.json",
    }
    f.write_text(json.dumps(rec) + "\n")
    (p,) = load_benchmark("math500", tmp_path).problems
    assert (p.id, p.question, p.answer, p.meta["category"], p.meta["level"]) == (
        "test/algebra/1.json",
        "Compute $1+1$.",
        "2",
        "Algebra",
        1,
    )


def test_summary_and_result_shape() -> None:
    r = LoadResult([Problem("a", "q", answer="1")], name="x", source="f.jsonl", notes=["note"])
    assert r.summary() == "x: 1 problem from f.jsonl; skipped 0; note"
    r.skipped["missing answer"] += 2
    assert "skipped 2 (missing answer: 2)" in r.summary()
    assert len(r) == 1 and [p.id for p in r] == ["a"]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["size=10", "seed=1234"], {"size": 10, "seed": 1234}),
        (["allow-missing-images=true"], {"allow_missing_images": True}),
        (["fields=question=q,answer=a"], {"fields": "question=q,answer=a"}),  # value keeps = and ,
        (["config=min_terms=2,max_terms=2"], {"config": "min_terms=2,max_terms=2"}),
        (["versions=Text Only,Vision Only"], {"versions": "Text Only,Vision Only"}),
        ({"image-root": "/x"}, {"image_root": "/x"}),
        (None, {}),
    ],
)
def test_parse_options(items, expected) -> None:
    assert parse_options(items) == expected


@pytest.mark.parametrize("items", [["size"], ["size=1", "size=2"], ["=3"]])
def test_parse_options_errors(items) -> None:
    with pytest.raises(SlowthinkError):
        parse_options(items)


def test_options_from_cli_reach_the_loader(tiny: Path) -> None:
    opts = parse_options(["fields=question=question,answer=answer", "answer_type=number"])
    assert all(p.answer_type == "number" for p in load_benchmark("jsonl", tiny, **opts))
