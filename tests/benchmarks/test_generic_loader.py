"""The generic loader: any JSONL/JSON/CSV with a field mapping, and bad rows counted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from slowthink.benchmarks import FieldMap, load_benchmark
from slowthink.types import SlowthinkError


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


class TestFieldMap:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            # CLI string
            ("question=problem,answer=solution", FieldMap(question="problem", answer="solution")),
            # unknown keys go to meta, spaces trimmed
            ("question=q, answer=a, level=lvl", FieldMap(question="q", answer="a", meta={"level": "lvl"})),
            # options spread over columns
            ("question=q,choices=A|B|C", FieldMap(question="q", choices=["A", "B", "C"])),
            # aliases
            (
                {"question": "q", "images": "img", "options": "opts"},
                FieldMap(question="q", image="img", choices="opts"),
            ),
            # inline YAML
            (
                "{question: q, category: metadata.subject}",
                FieldMap(question="q", category="metadata.subject"),
            ),
            (None, FieldMap()),
        ],
    )
    def test_parse(self, spec, expected: FieldMap) -> None:
        assert FieldMap.parse(spec) == expected

    def test_parse_yaml_file(self, tmp_path: Path) -> None:
        f = tmp_path / "fields.yaml"
        f.write_text("fields:\n  question: problem\n  answer: answer\n  category: type\n")
        assert FieldMap.parse(str(f)) == FieldMap(question="problem", answer="answer", category="type")
        assert FieldMap.parse(f) == FieldMap(question="problem", answer="answer", category="type")

    @pytest.mark.parametrize(
        "spec", ["question", "question=q,question=r", "=q", {"question": ""}, "missing.yaml"]
    )
    def test_bad_specs(self, spec) -> None:
        with pytest.raises(SlowthinkError):
            FieldMap.parse(spec)

    def test_resolve_guesses_common_names(self) -> None:
        fm = FieldMap().resolve(["problem", "answer", "unique_id", "subject", "level"], where="x")
        assert (fm.question, fm.answer, fm.id, fm.category) == ("problem", "answer", "unique_id", "subject")
        assert fm.meta == {"level": "level", "subject": "subject"}

    def test_resolve_letter_columns(self) -> None:
        fm = FieldMap().resolve(["question", "answer", "A", "B", "C"], where="x")
        assert fm.choices == ["A", "B", "C"]


class TestJsonl:
    def test_mapping_and_types(self, tmp_path: Path) -> None:
        f = write_jsonl(
            tmp_path / "set.jsonl",
            [
                {"uid": "a", "problem": "1+1?", "solution": "2", "topic": "arith", "lvl": 1},
                {"uid": "b", "problem": "Pick", "solution": "y", "opts": ["x", "y"], "topic": "mc"},
                {"uid": "c", "problem": "Pick", "solution": "(A)", "opts": ["x", "y"], "topic": "mc"},
                {
                    "uid": "d",
                    "problem": "Simplify",
                    "solution": "\\frac{1}{2}",
                    "topic": "alg",
                    "kind": "latex",
                },
            ],
        )
        r = load_benchmark(
            "jsonl",
            f,
            fields="id=uid,question=problem,answer=solution,choices=opts,category=topic,answer_type=kind,level=lvl",
        )
        a, b, c, d = r.problems
        assert (a.id, a.answer, a.answer_type, a.meta["category"], a.meta["level"]) == (
            "a",
            "2",
            "number",
            "arith",
            1,
        )
        assert (b.choices, b.answer, b.answer_type, b.meta["answer_letter"]) == (
            ["x", "y"],
            "y",
            "choice",
            "B",
        )
        assert (c.answer, c.meta["answer_letter"]) == ("A", "A")
        assert d.answer_type == "latex" and d.meta["benchmark"] == "jsonl"

    def test_unknown_field_lists_available(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"q": "1+1?", "a": "2"}])
        with pytest.raises(SlowthinkError) as e:
            load_benchmark("jsonl", f, fields="question=problem,answer=a")
        assert "field 'problem' (mapped to question)" in str(e.value) and "available fields: a, q" in str(
            e.value
        )

    def test_no_question_field_found(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"text": "1+1?", "gold": "2"}])
        with pytest.raises(SlowthinkError, match="no question field found.*available fields: gold, text"):
            load_benchmark("jsonl", f)
        assert load_benchmark("jsonl", f, fields="question=text").problems[0].answer == "2"

    def test_bad_rows_counted(self, tmp_path: Path) -> None:
        f = write_jsonl(
            tmp_path / "x.jsonl",
            [
                {"id": 1, "question": "ok?", "answer": "1"},
                "{not json",
                "[1, 2]",
                {"id": 2, "question": "", "answer": "1"},
                {"id": 3, "question": "no answer"},
                {"id": 1, "question": "dup id", "answer": "1"},
                {"id": 4, "question": "mc", "answer": "Z", "choices": ["x", "y"]},
                {"id": 5, "question": "mc", "answer": "x", "choices": "not a list"},
                {"id": 6, "question": "pic", "answer": "1", "image": "nope.png"},
                {"id": 7, "question": "also ok", "answer": "2"},
            ],
        )
        r = load_benchmark("jsonl", f)
        assert [p.id for p in r] == ["1", "7"]
        assert r.skipped == {
            "bad JSON line": 1,
            "not a JSON object": 1,
            "missing question": 1,
            "missing answer": 1,
            "duplicate id": 1,
            "answer not in choices": 1,
            "bad choices": 1,
            "image missing": 1,
        }
        s = r.summary()
        assert s.startswith("jsonl: 2 problems from ") and "skipped 8" in s and "bad JSON line: 1" in s

    def test_nothing_usable_is_one_line(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", ["{bad", {"question": "q"}, {"question": "q2", "answer": None}])
        with pytest.raises(SlowthinkError) as e:
            load_benchmark("jsonl", f)
        assert "no usable problem" in str(e.value) and "\n" not in str(e.value)

    def test_require_answer_false(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"question": "q1"}, {"question": "q2"}])
        r = load_benchmark("jsonl", f, require_answer=False)
        assert [(p.id, p.answer) for p in r] == [("x-0", None), ("x-1", None)]

    def test_answer_extract(self, tmp_path: Path) -> None:
        f = write_jsonl(
            tmp_path / "m.jsonl",
            [
                {"problem": "p", "solution": "so $\\boxed{\\frac{1}{2}}$"},
                {"problem": "p2", "solution": "no box"},
            ],
        )
        r = load_benchmark("jsonl", f, fields="question=problem,answer=solution", answer_extract="boxed")
        assert [p.answer for p in r] == ["\\frac{1}{2}"] and r.skipped == {"missing answer": 1}
        g = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "work\n#### 1,234"}])
        assert load_benchmark("jsonl", g, answer_extract="####").problems[0].answer == "1234"

    def test_fixed_answer_type_and_nested_fields(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"q": "q", "a": 3, "metadata": {"cat": "geo"}}])
        r = load_benchmark(
            "jsonl",
            f,
            fields={"question": "q", "answer": "a", "category": "metadata.cat"},
            answer_type="latex",
        )
        assert r.problems[0].answer_type == "latex" and r.problems[0].meta["category"] == "geo"
        with pytest.raises(SlowthinkError, match="answer_type must be one of"):
            load_benchmark("jsonl", f, fields="question=q,answer=a", answer_type="bogus")

    def test_relative_images(self, tmp_path: Path) -> None:
        (tmp_path / "img").mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / "img" / "a.png")
        (tmp_path / "img" / "broken.png").write_bytes(b"not an image")
        f = write_jsonl(
            tmp_path / "x.jsonl",
            [
                {"question": "q1", "answer": "1", "image": "img/a.png"},
                {"question": "q2", "answer": "1", "image": "img/broken.png"},
                {"question": "q3", "answer": "1", "image": ["img/a.png", "img/a.png"]},
            ],
        )
        r = load_benchmark("jsonl", f)
        assert [len(p.images) for p in r] == [1, 2]
        assert Path(r.problems[0].images[0]) == (tmp_path / "img" / "a.png").resolve()
        assert r.skipped == {"image unreadable": 1}

    def test_all_images_missing(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "1", "image": "gone.png"}])
        with pytest.raises(SlowthinkError, match=r"no image found \(1 image missing"):
            load_benchmark("jsonl", f)
        r = load_benchmark("jsonl", f, allow_missing_images=True)
        assert r.problems[0].images == [] and r.problems[0].meta["image_missing"] is True


class TestOtherFormats:
    def test_csv(self, tmp_path: Path) -> None:
        f = tmp_path / "set.csv"
        with f.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["idx", "q", "a", "A", "B", "C", "cat"])
            w.writerow(["1", "Which is red?", "B", "sky", "apple", "", "colour"])
            w.writerow(["2", "How many?", "3", "", "", "", "count"])
            w.writerow(["3", "extra", "1", "x", "y", "z", "c", "EXTRA"])
        r = load_benchmark("jsonl", f, fields="id=idx,question=q,answer=a,category=cat")
        one, two = r.problems
        assert (one.choices, one.answer, one.answer_type, one.meta["category"]) == (
            ["sky", "apple"],
            "B",
            "choice",
            "colour",
        )
        assert (two.choices, two.answer_type) == (None, "number")
        assert r.skipped == {"bad CSV row": 1}

    def test_json_list_and_dict(self, tmp_path: Path) -> None:
        lst = tmp_path / "l.json"
        lst.write_text(json.dumps([{"question": "a", "answer": "1"}, 5]))
        r = load_benchmark("jsonl", lst)
        assert len(r) == 1 and r.skipped == {"not a JSON object": 1}
        dct = tmp_path / "d.json"
        dct.write_text(
            json.dumps({"k1": {"question": "a", "answer": "1"}, "k2": {"question": "b", "answer": "2"}})
        )
        assert [p.id for p in load_benchmark("jsonl", dct)] == ["d-k1", "d-k2"]
        wrapped = tmp_path / "w.json"
        wrapped.write_text(json.dumps({"version": 1, "data": [{"question": "a", "answer": "1"}]}))
        assert len(load_benchmark("jsonl", wrapped)) == 1

    def test_broken_json_file(self, tmp_path: Path) -> None:
        f = tmp_path / "b.json"
        f.write_text('[{"question": "a",')
        with pytest.raises(SlowthinkError, match=r"is not valid JSON \(line 1"):
            load_benchmark("jsonl", f)

    def test_unknown_suffix_and_format_option(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.txt", [{"question": "q", "answer": "1"}])
        with pytest.raises(SlowthinkError, match="pass format="):
            load_benchmark("jsonl", f)
        assert len(load_benchmark("jsonl", f, format="jsonl")) == 1

    def test_parquet_without_pyarrow_has_install_hint(self, tmp_path: Path) -> None:
        f = tmp_path / "x.parquet"
        f.write_bytes(b"PAR1")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            try:
                import pandas  # noqa: F401
            except ImportError:
                with pytest.raises(SlowthinkError, match="pip install pyarrow"):
                    load_benchmark("jsonl", f)
                return
        pytest.skip("pyarrow or pandas installed")

    def test_file_path_as_name(self, tmp_path: Path) -> None:
        f = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "1"}])
        assert load_benchmark(str(f)).name == "jsonl"


class TestEmbeddedImages:
    def test_base64_data_url_and_bytes_dict(self, tmp_path: Path) -> None:
        import base64
        import io

        buf = io.BytesIO()
        Image.new("RGB", (3, 5), "green").save(buf, format="PNG")
        raw = buf.getvalue()
        b64 = base64.b64encode(raw).decode()
        f = write_jsonl(
            tmp_path / "x.jsonl",
            [
                {"question": "plain", "answer": "1", "image": b64},
                {"question": "url", "answer": "1", "image": "data:image/png;base64," + b64},
                {"question": "bad", "answer": "1", "image": "data:image/png;base64,AAAA"},
            ],
        )
        r = load_benchmark("jsonl", f, image_dir=tmp_path / "cache")
        assert len(r) == 2 and r.skipped == {"bad image data": 1}
        assert r.problems[0].images == r.problems[1].images  # same bytes, one cached file
        with Image.open(r.problems[0].images[0]) as im:
            assert im.size == (3, 5)
        from slowthink.benchmarks.images import ImageResolver

        res = ImageResolver(tmp_path, cache_dir=tmp_path / "c2")
        paths, missing = res.resolve({"bytes": raw, "path": None})
        assert not missing and Path(paths[0]).read_bytes() == raw

    def test_long_path_like_name_is_missing_not_bad_data(self, tmp_path: Path) -> None:
        f = write_jsonl(
            tmp_path / "x.jsonl",
            [
                {"question": "q", "answer": "1", "image": "figures_problem_0001_diagram_main_view"},
                {"question": "q2", "answer": "2"},
            ],
        )
        r = load_benchmark("jsonl", f)
        assert r.skipped == {"image missing": 1} and len(r) == 1


def test_invalid_utf8_line_counted(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(b'{"question": "q", "answer": "1"}\n{"question": "\xff\xfe", "answer": "1"}\n\n')
    r = load_benchmark("jsonl", f)
    assert len(r) == 1 and r.skipped == {"bad JSON line": 1}
