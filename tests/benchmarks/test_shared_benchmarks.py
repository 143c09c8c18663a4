"""The real benchmark files in ../shared/data: counts, fields, multiple-choice conversions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from slowthink.benchmarks import load_benchmark
from slowthink.types import SlowthinkError


class TestMathV:
    def test_counts_and_fields(self, shared_data: Path) -> None:
        r = load_benchmark("math-v", shared_data / "math-v" / "testmini.jsonl")
        assert len(r) == 304 and not r.skipped
        assert sum(p.is_multiple_choice for p in r) == 190
        assert Counter(p.meta["category"] for p in r) == Counter(
            {s: 19 for s in {p.meta["subject"] for p in r}}
        )
        assert {p.meta["level"] for p in r} <= {1, 2, 3, 4, 5}

    def test_images_resolve(self, shared_data: Path) -> None:
        r = load_benchmark("math-v", shared_data / "math-v")  # a folder works too
        for p in r:
            assert len(p.images) == 1
            img = Path(p.images[0])
            assert img.is_absolute() and img.is_file() and img.name == f"{p.id}.jpg"

    def test_letter_options_drawn_in_image(self, shared_data: Path) -> None:
        by_id = {p.id: p for p in load_benchmark("math-v", shared_data / "math-v")}
        kittens = by_id["6"]
        assert kittens.choices == ["A", "B", "C", "D", "E"] and kittens.answer == "D"
        assert kittens.answer_type == "choice" and kittens.meta["choices_in_image"] is True
        assert kittens.question.endswith("different colour?")  # <image1> line stripped
        assert "<image1>" in kittens.meta["raw_question"]
        digits = by_id["4"]
        assert digits.choices is None and digits.answer == "6" and digits.answer_type == "number"

    def test_text_options_and_letter_answers(self, shared_data: Path) -> None:
        r = load_benchmark("math-v", shared_data / "math-v")
        text_mc = [p for p in r if p.choices and not p.meta.get("choices_in_image")]
        assert len(text_mc) > 50
        for p in r:
            if p.choices:
                assert p.answer in "ABCDE" and len(p.answer) == 1
        # "(A)".."(E)" and "A)".."E)" options are letters too
        assert sum(bool(p.meta.get("choices_in_image")) for p in r) == 73 + 5 + 1

    def test_placeholders(self, shared_data: Path) -> None:
        stripped = load_benchmark("math-v", shared_data / "math-v")
        kept = load_benchmark("math-v", shared_data / "math-v", placeholders="keep")
        assert not any("<image" in p.question for p in stripped)
        assert sum("<image1>" in p.question for p in kept) > 290


class TestGSM8K:
    def test_test_split(self, shared_data: Path) -> None:
        r = load_benchmark("gsm8k", shared_data / "gsm8k" / "test.jsonl")
        assert len(r) == 1319 and not r.skipped
        first = r.problems[0]
        assert first.id == "gsm8k-test-0" and first.answer == "18" and first.answer_type == "number"
        assert first.question.startswith("Janet") and first.meta["solution"].endswith("#### 18")
        assert all("," not in p.answer for p in r)
        assert r.problems[-1].id == "gsm8k-test-1318"

    def test_train_split_by_option(self, shared_data: Path) -> None:
        r = load_benchmark("gsm8k", shared_data, split="train", limit=3)
        assert [p.id for p in r] == ["gsm8k-train-0", "gsm8k-train-1", "gsm8k-train-2"]
        assert r.problems[0].answer == "72"


class TestMathVista:
    def test_all_images_missing_is_one_clear_error(self, shared_data: Path) -> None:
        with pytest.raises(SlowthinkError) as e:
            load_benchmark("mathvista", shared_data / "mathvista" / "testmini.json")
        msg = str(e.value)
        assert "\n" not in msg and "images.zip" in msg and "allow_missing_images=True" in msg
        assert str(shared_data / "mathvista") in msg

    def test_text_only_mode(self, shared_data: Path) -> None:
        r = load_benchmark("mathvista", shared_data / "mathvista", allow_missing_images=True)
        assert len(r) == 1000 and not r.skipped
        assert all(p.images == [] and p.meta["image_missing"] for p in r)
        assert "text-only" in r.summary()
        assert Counter(p.answer_type for p in r) == {"choice": 540, "number": 458, "list": 2}
        assert r.by_category() == {"math-targeted-vqa": 540, "general-vqa": 460}

    def test_text_only_flag_attaches_nothing(self, shared_data: Path) -> None:
        r = load_benchmark("mathvista", shared_data / "mathvista", text_only=True, limit=5)
        assert len(r) == 5 and all(not p.images and "image_missing" not in p.meta for p in r)

    def test_multiple_choice_keeps_option_text(self, shared_data: Path) -> None:
        by_id = {
            p.id: p for p in load_benchmark("mathvista", shared_data / "mathvista", allow_missing_images=True)
        }
        p = by_id["3"]
        assert p.choices == ["135°", "140°", "145°", "150°"]
        assert p.answer == "145°" and p.answer_type == "choice" and p.meta["answer_letter"] == "C"
        assert p.meta["language"] == "chinese" and p.meta["skills"] == [
            "geometry reasoning",
            "algebraic reasoning",
        ]

    def test_numbers_precision_unit(self, shared_data: Path) -> None:
        by_id = {
            p.id: p for p in load_benchmark("mathvista", shared_data / "mathvista", allow_missing_images=True)
        }
        spring = by_id["1"]
        assert (spring.answer, spring.answer_type, spring.precision) == ("1.2", "number", 1)
        assert spring.meta["category"] == "math-targeted-vqa" and spring.meta["source"] == "SciBench"
        cup = by_id["2"]
        assert (cup.answer, cup.answer_type, cup.precision, cup.meta["unit"]) == ("1000", "number", None, "g")
        lists = [p for p in by_id.values() if p.answer_type == "list"]
        assert {p.answer for p in lists} == {"[0, 2, 0, 2, 1, 7, 1, 2, 0, 3, 0, 6]", "[2014, 2016]"}

    def test_images_found_under_image_root(self, shared_data: Path, tmp_path: Path) -> None:
        from PIL import Image

        (tmp_path / "images").mkdir()
        for pid in ("1", "2"):
            Image.new("RGB", (8, 8), "white").save(tmp_path / "images" / f"{pid}.jpg")
        r = load_benchmark("mathvista", shared_data / "mathvista", image_root=tmp_path, limit=10)
        assert [p.id for p in r] == ["1", "2"]  # the others are skipped, counted
        assert r.problems[0].images == [str((tmp_path / "images" / "1.jpg").resolve())]
        assert r.skipped["image missing"] >= 8


class TestMathVerse:
    def test_counts_and_meta(self, shared_data: Path) -> None:
        r = load_benchmark("mathverse", shared_data / "mathverse" / "testmini_text_only.json")
        assert len(r) == 788 and not r.skipped
        assert r.by_category() == {"Plane Geometry": 510, "Functions": 159, "Solid Geometry": 119}
        p = r.problems[0]
        assert p.meta["problem_version"] == "Text Only" and p.meta["subfield"] == "Angle"
        assert p.images == []

    def test_inline_choices_parsed(self, shared_data: Path) -> None:
        r = load_benchmark("mathverse", shared_data / "mathverse")
        p = r.problems[0]
        assert p.choices == ["40°", "60°", "120°", "140°"] and p.answer == "D" and p.answer_type == "choice"
        assert p.question.endswith("then the size of angle CED is ()")
        assert "Choices:" not in p.question and "Choices:" in p.meta["raw_question"]
        mc = [q for q in r if q.meta["question_type"] == "multi-choice"]
        assert len(mc) == 436 and all(q.choices for q in mc)
        assert not any("Choices:" in q.question for q in mc)

    def test_answers_become_letters(self, shared_data: Path) -> None:
        r = load_benchmark("mathverse", shared_data / "mathverse")
        mc = [q for q in r if q.choices]
        singles = [q for q in mc if q.answer_type == "choice"]
        assert all(len(q.answer) == 1 and q.answer == q.meta["answer_letter"] for q in singles)
        # 4 option-text golds ("090^\\circ T", "False", ...) and 4 like "(C)" were mapped to letters
        raw = Counter(q.meta["raw_answer"].startswith("(") for q in mc if "raw_answer" in q.meta)
        assert raw == {True: 4, False: 4}
        multi = [q for q in mc if q.answer_type == "list"]
        assert sorted(q.answer for q in multi) == ["A, C", "C, D"]

    def test_category_by_version(self, shared_data: Path) -> None:
        r = load_benchmark("mathverse", shared_data / "mathverse", category_by="problem_version", limit=5)
        assert r.by_category() == {"Text Only": 5}

    def test_versions_filter(self, shared_data: Path) -> None:
        with pytest.raises(SlowthinkError, match="unknown problem version 'Vision Onl'"):
            load_benchmark("mathverse", shared_data / "mathverse", versions="Vision Onl")
        with pytest.raises(SlowthinkError, match="no problem found"):
            load_benchmark("mathverse", shared_data / "mathverse", versions="Vision Only")
        assert len(load_benchmark("mathverse", shared_data / "mathverse", versions=["text only"])) == 788


def test_default_paths_from_env(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOWTHINK_DATA", str(shared_data))
    assert len(load_benchmark("math-v", limit=2)) == 2
    assert load_benchmark("gsm8k", limit=1).problems[0].id == "gsm8k-test-0"
    assert len(load_benchmark("mathverse", limit=3)) == 3


def test_mathv_bad_rows_in_a_copy(shared_data: Path, tmp_path: Path) -> None:
    """Rows of a MATH-V-shaped file whose image is gone or broken are counted, not fatal."""
    import json
    import shutil

    lines = (shared_data / "math-v" / "testmini.jsonl").read_text().splitlines()[:4]
    recs = [json.loads(x) for x in lines]
    (tmp_path / "images").mkdir()
    shutil.copy(shared_data / "math-v" / recs[0]["image"], tmp_path / recs[0]["image"])
    (tmp_path / recs[1]["image"]).write_bytes(b"broken")
    recs[3]["options"] = ["A", "B", "C", "D", "E"]
    recs[3]["answer"] = "Q"
    f = tmp_path / "testmini.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n{oops\n")
    r = load_benchmark("math-v", f)
    assert [p.id for p in r] == [recs[0]["id"]]
    assert r.skipped == {
        "image unreadable": 1,
        "image missing": 1,
        "answer not in choices": 1,
        "bad JSON line": 1,
    }
    kept = load_benchmark("math-v", f, allow_missing_images=True)
    assert len(kept) == 2 and "1 image missing" in kept.summary()
