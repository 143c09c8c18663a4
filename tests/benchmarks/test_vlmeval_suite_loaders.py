"""Loaders of VLMEvalKit's TSV layouts for LLaVA-CoT's suite: MMBench (with CircularEval copies,
read from the file or generated as VLMEvalKit's CIRCULAR tool makes them), AI2D, HallusionBench and
MM-Vet, on the fixtures in tests/benchmarks/fixtures/vlmeval (see make_fixtures.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from slowthink.benchmarks import load_benchmark
from slowthink.benchmarks.mmbench import circular_offset, is_abnormal, rotate, rotation_maps
from slowthink.types import Problem, SlowthinkError

FIX = Path(__file__).parent / "fixtures" / "vlmeval"


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return path


def test_mmbench_copies_from_the_file_grouped_by_index_mod_1e6(tmp_path):
    r = load_benchmark("mmbench", FIX / "MMBench_DEV_EN.tsv", image_dir=tmp_path / "img")
    by_id = {p.id: p for p in r}
    assert len(r) == 11 and r.n_skipped == 0
    assert any("copies read from the file" in n for n in r.notes)
    copy = by_id["2000001"]  # rotation 2 of question 1: cow, cat, dog; the cat is now B
    assert copy.choices == ["cow", "cat", "dog"] and copy.answer == "B"
    assert copy.meta["g_index"] == "1" and by_id["1"].meta["g_index"] == "1"
    assert copy.images == by_id["1"].images and copy.images  # the copy's image is its original's
    assert by_id["0"].question == "Hint: Look closely.\nWhich colour fills the picture? Pick: red"
    assert (
        by_id["3"].meta["l2_category"] == "coarse_perception" and by_id["3"].meta["category"] == "image_scene"
    )


def test_mmbench_generated_rotations_equal_vlmevalkits_copies(tmp_path):
    """A file with originals only: the copies made are the ones the DEV file holds."""
    rows = rows_of(FIX / "MMBench_DEV_EN.tsv")
    originals = write_rows(tmp_path / "MMBench_DEV_EN.tsv", [r for r in rows if int(r["index"]) < 1_000_000])
    gen = load_benchmark("mmbench", originals, image_dir=tmp_path / "img")
    ref = load_benchmark("mmbench", FIX / "MMBench_DEV_EN.tsv", image_dir=tmp_path / "img")
    assert any("copies generated" in n for n in gen.notes)
    key = lambda p: (p.id, p.choices, p.answer, p.meta["g_index"], p.images)  # noqa: E731
    assert sorted(map(key, gen)) == sorted(map(key, ref))


def test_mmbench_limit_counts_questions_with_all_their_copies(tmp_path):
    r = load_benchmark("mmbench", FIX / "MMBench_DEV_EN.tsv", limit=2, image_dir=tmp_path / "img")
    assert sorted(p.id for p in r) == ["0", "1", "1000000", "1000001", "2000001"]


def test_mmbench_circular_off_keeps_rows_as_they_are(tmp_path):
    r = load_benchmark(
        "mmbench", FIX / "MMBench_DEV_EN.tsv", circular="off", limit=3, image_dir=tmp_path / "i"
    )
    assert [p.id for p in r] == ["0", "1000000", "1"]
    assert all(p.meta["g_index"] == p.id for p in r)
    with pytest.raises(SlowthinkError, match="circular must be one of auto, off"):
        load_benchmark("mmbench", FIX / "MMBench_DEV_EN.tsv", circular="yes")


@pytest.mark.parametrize(
    "k, i, expected",
    [
        (4, 1, {"A": "D", "B": "A", "C": "B", "D": "C"}),  # deque(ABCD).rotate(1) = DABC
        (4, 2, {"A": "C", "B": "D", "C": "A", "D": "B"}),
        (3, 2, {"A": "B", "B": "C", "C": "A"}),  # deque(ABC) rotated twice = BCA
    ],
)
def test_rotation_maps(k, i, expected):
    assert rotation_maps(k)[i] == expected
    assert rotation_maps(k)[0] == {c: c for c in "ABCD"[:k]}


def test_rotate_moves_the_answer_with_its_option():
    p = Problem("12", "q", choices=["one", "two", "three", "four"], answer="C", answer_type="choice")
    r = rotate(p, 1, 1_000_000)  # A->D, B->A, C->B, D->C
    assert r.id == "1000012" and r.choices == ["two", "three", "four", "one"] and r.answer == "B"
    assert r.choices[ord(r.answer) - 65] == "three" and p.choices == ["one", "two", "three", "four"]


@pytest.mark.parametrize(
    "choices, answer, abnormal",
    [
        (["red", "blue"], "B", False),
        (["A", "B"], "A", True),  # an option that is a letter
        (["A and B", "none"], "B", True),  # an option naming two of the option letters
        (["A and C", "none"], "B", False),  # C is not an option letter of a two-option question
        (["red", "blue"], "C", True),  # an answer that is not an option
        (["I think so", "B is right"], "A", False),  # one letter word in an option is fine
    ],
)
def test_abnormal_questions_are_not_rotated(choices, answer, abnormal):
    assert is_abnormal(Problem("1", "q", choices=choices, answer=answer)) is abnormal


def test_generated_offset_grows_past_large_indexes():
    assert circular_offset([5, 10]) == 1_000_000 and circular_offset([2_000_000]) == 10_000_000


def test_ai2d(tmp_path):
    r = load_benchmark("ai2d", FIX / "AI2D_TEST.tsv", image_dir=tmp_path / "img")
    assert [p.answer for p in r] == ["B", "C", "B"]
    assert r.problems[1].choices == ["leaf", "stem", "root", "flower"] and r.problems[1].images


def test_hallusionbench_ids_from_the_index(tmp_path):
    r = load_benchmark("hallusionbench", FIX / "HallusionBench.tsv", image_dir=tmp_path / "img")
    p = {q.id: q for q in r}["VD_figure_0_0_1_0"]
    assert (p.meta["set_id"], p.meta["figure_id"], p.meta["question_id"]) == ("0", "1", "0")
    assert p.meta["category"] == "VD" and p.meta["l2_category"] == "figure" and p.answer == "No"
    assert p.answer_type == "text" and p.choices is None


def test_hallusionbench_id_columns_win_and_rows_without_ids_are_noted(tmp_path):
    rows = rows_of(FIX / "HallusionBench.tsv")[:2]
    rows[0] = {**rows[0], "set_id": "9", "figure_id": "", "question_id": ""}
    rows[1] = {**rows[1], "index": "17", "set_id": "", "figure_id": "", "question_id": ""}
    r = load_benchmark(
        "hallusionbench", write_rows(tmp_path / "HallusionBench.tsv", rows), image_dir=tmp_path / "i"
    )
    first, second = r.problems
    assert (first.meta["set_id"], first.meta["figure_id"]) == ("9", "0")
    assert second.meta["set_id"] is None
    assert any("1 row(s) without set/figure/question ids" in n for n in r.notes)


def test_mmvet_keeps_capabilities_and_free_form_gold(tmp_path):
    r = load_benchmark("mm-vet", FIX / "MMVet.tsv", image_dir=tmp_path / "img")
    assert [p.meta["category"] for p in r] == ["rec,ocr", "rec,math", "rec", "ocr"]
    assert r.problems[2].answer == "the cat<OR>a cat" and r.problems[2].choices is None


def test_unknown_option_of_a_suite_loader_is_one_line():
    with pytest.raises(SlowthinkError, match="benchmark 'hallusionbench' has no option 'nope'"):
        load_benchmark("hallusionbench", FIX / "HallusionBench.tsv", nope=1)
