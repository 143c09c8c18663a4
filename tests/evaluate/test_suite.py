"""``slowthink eval --suite llava-cot --data-root DIR`` end to end on the VLMEvalKit fixtures
(tests/benchmarks/fixtures/vlmeval) with the suite's scripted engine (tests/evaluate/suite_doubles.py):
the table's official scores, the prediction files' columns, the missing-benchmark line, resuming."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slowthink.cli import app
from slowthink.evaluate.suite import run_suite
from slowthink.types import SlowthinkError
from tests.evaluate.suite_doubles import SuiteEngine

FIX = Path(__file__).resolve().parents[1] / "benchmarks" / "fixtures" / "vlmeval"
ENGINE = "py:tests.evaluate.suite_doubles:SuiteEngine"
cli = CliRunner()


def overall(table: dict, name: str) -> dict:
    b = next(b for b in table["benchmarks"] if b["name"] == name)
    return b["jobs"][0]["splits"][0]


def splits(table: dict, name: str) -> dict:
    b = next(b for b in table["benchmarks"] if b["name"] == name)
    return {(s["by"], s["split"]): s for s in b["jobs"][0]["splits"]}


def read_predictions(stem: Path) -> list[dict[str, str]]:
    """A prediction file's rows: the .xlsx when openpyxl wrote one, else the .tsv."""
    if stem.with_suffix(".xlsx").is_file():
        import openpyxl

        rows = list(openpyxl.load_workbook(stem.with_suffix(".xlsx")).active.iter_rows(values_only=True))
        return [{k: "" if v is None else str(v) for k, v in zip(rows[0], r)} for r in rows[1:]]
    with stem.with_suffix(".tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "run"
    args = ["eval", "--suite", "llava-cot", "--data-root", str(FIX), "--engine", ENGINE]
    args += [
        "--strategy",
        "cot",
        "--format",
        "free",
        "--n",
        "1",
        "--out",
        str(out),
        "--no-plots",
        "--no-progress",
    ]
    r = cli.invoke(app, args)
    return r, out


def test_cli_runs_the_five_present_benchmarks_and_names_the_missing_one(suite_run):
    r, out = suite_run
    assert r.exit_code == 0, r.output
    missing = [line for line in r.stderr.splitlines() if "MathVista" in line]
    assert len(missing) == 1 and "put MathVista_MINI.tsv" in missing[0] and str(FIX) in r.stderr
    assert "| MMBench | cot | circular | 75.0 | 4 |" in r.stdout
    table = json.loads((out / "suite.json").read_text())
    assert [b["name"] for b in table["benchmarks"]] == [
        "MMStar",
        "MMBench",
        "MM-Vet",
        "AI2D",
        "HallusionBench",
    ]
    assert ["warning: " + line for line in table["skipped"]] == missing
    assert (out / "suite.md").read_text().count("\n## ") == 5


def test_official_scores_in_the_table(suite_run):
    _, out = suite_run
    table = json.loads((out / "suite.json").read_text())
    # MMBench: questions 0, 1, 3 right in every rotation; question 2 (TRICK) right only as rotation 0
    mmb = splits(table, "MMBench")
    assert mmb[("overall", "Overall")]["n"] == 4
    assert mmb[("overall", "Overall")]["values"] == {
        "circular": 75.0,
        "vanilla": pytest.approx(100 * 10 / 11),
    }
    assert mmb[("l2-category", "relation_reasoning")]["values"]["circular"] == 0.0
    assert mmb[("category", "image_scene")]["values"]["circular"] == 100.0
    # HallusionBench: 5 of 6 right; figure (VD,0,0) has a wrong question; question (VD,0,q1) too
    hb = splits(table, "HallusionBench")
    assert hb[("overall", "Overall")]["values"] == pytest.approx(
        {"aAcc": 500 / 6, "fAcc": 75.0, "qAcc": 200 / 3}
    )
    assert hb[("category", "VD")]["values"] == {"aAcc": 75.0, "fAcc": 50.0, "qAcc": 50.0}
    # MM-Vet: STOP 1.0, "partial 3" 0.5 on the retry, "unsure" unparseable -> 0, EXIT 0.0
    mv = splits(table, "MM-Vet")
    assert mv[("overall", "Overall")]["values"] == {"score": 37.5}
    assert mv[("capability", "rec")]["values"]["score"] == pytest.approx(50.0)
    assert mv[("capabilities", "rec_ocr")]["values"]["score"] == 100.0
    notes = next(b for b in table["benchmarks"] if b["name"] == "MM-Vet")["jobs"][0]["notes"]
    assert notes == ["1 grader reply unparseable after retries: scored 0"]
    assert overall(table, "AI2D")["values"] == {"accuracy": pytest.approx(200 / 3)}
    assert overall(table, "MMStar")["values"] == {"accuracy": 50.0}


def test_prediction_files_have_the_columns_vlmevalkit_reads(suite_run):
    _, out = suite_run
    pred = out / "predictions"
    mmb = read_predictions(pred / "slowthink-cot_MMBench_DEV_EN")
    columns = [
        "index",
        "question",
        "hint",
        *"ABCD",
        "answer",
        "prediction",
        "category",
        "l2-category",
        "split",
    ]
    assert list(mmb[0]) == columns
    assert len(mmb) == 11 and {r["index"] for r in mmb} >= {"0", "1000000", "3000003"}
    row = next(r for r in mmb if r["index"] == "1000002")
    assert (row["A"], row["B"], row["answer"], row["prediction"]) == (
        "circle",
        "square",
        "B",
        "The answer is A.",
    )
    assert (
        next(r for r in mmb if r["index"] == "0")["question"] == "Which colour fills the picture? Pick: red"
    )
    hb = read_predictions(pred / "slowthink-cot_HallusionBench")
    assert list(hb[0]) == ["index", "question", "answer", "prediction", "category", "l2-category"]
    assert (
        hb[1]["index"] == "VD_figure_0_0_0_1"
        and hb[1]["prediction"] == "Yes, it is."
        and hb[1]["answer"] == "No"
    )
    mv = read_predictions(pred / "slowthink-cot_MMVet")
    assert list(mv[0]) == ["index", "question", "answer", "prediction", "category"]
    assert [r["prediction"] for r in mv] == ["STOP", "partial 3", "unsure", "EXIT"]
    assert [r["category"] for r in mv] == ["rec,ocr", "rec,math", "rec", "ocr"]
    assert read_predictions(pred / "slowthink-cot_AI2D_TEST")[2]["answer"] == "B"
    assert len(read_predictions(pred / "slowthink-cot_MMStar")) == 2


def test_a_second_run_resumes_without_generating_or_regrading(suite_run, tmp_path):
    _, first = suite_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    engine = SuiteEngine()
    base = {"engine": ENGINE, "strategies": ["cot"], "format": "free", "ns": [1]}
    result = run_suite("llava-cot", FIX, base, out, engine=engine, progress=False, plots=False)
    assert engine.calls == []  # every record and every MM-Vet grade was there

    def scores(table):
        return [[j["splits"] for j in b["jobs"]] for b in table["benchmarks"]]

    assert scores(result.table) == scores(json.loads((first / "suite.json").read_text()))


def test_generated_rotations_score_like_the_files_copies(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with (FIX / "MMBench_DEV_EN.tsv").open(encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    (root / "MMBench_DEV_EN.tsv").write_text(
        "".join([lines[0]] + [ln for ln in lines[1:] if int(ln.split("\t")[0]) < 1_000_000]), encoding="utf-8"
    )
    base = {"engine": ENGINE, "strategies": ["cot"], "format": "free", "ns": [1]}
    result = run_suite(
        "llava-cot", root, base, tmp_path / "run", engine=SuiteEngine(), progress=False, plots=False
    )
    assert len(result.skipped) == 5  # only MMBench is there
    assert overall(result.table, "MMBench") == {
        "split": "Overall",
        "by": "overall",
        "n": 4,
        "values": {"circular": 75.0, "vanilla": pytest.approx(100 * 10 / 11)},
    }
    assert "copies generated" in result.table["benchmarks"][0]["load"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "llava-cot"], "--suite and --data-root go together"),
        (["--suite", "nope", "--data-root", "."], "unknown suite 'nope': choose one of llava-cot"),
        (["--suite", "llava-cot", "--data-root", "/nope/dir"], "--data-root /nope/dir is not a folder"),
        (["--suite", "llava-cot", "--data-root", str(FIX), "-b", "gsm8k"], "--suite sets benchmark itself"),
    ],
)
def test_suite_usage_errors_are_one_line(args, message, tmp_path):
    r = cli.invoke(app, ["eval", *args, "--engine", ENGINE, "--out", str(tmp_path / "o"), "--no-progress"])
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_no_benchmark_file_is_one_error_naming_the_files(tmp_path):
    r = cli.invoke(
        app,
        ["eval", "--suite", "llava-cot", "--data-root", str(tmp_path), "--engine", ENGINE, "--no-progress"],
    )
    assert r.exit_code == 2
    assert "no benchmark file in" in r.stderr and "MMBench: MMBench_DEV_EN.tsv" in r.stderr
    with pytest.raises(SlowthinkError, match="HallusionBench: HallusionBench.tsv"):
        run_suite("llava-cot", tmp_path, {"engine": ENGINE}, tmp_path / "o")


def test_a_broken_file_is_one_line_and_the_others_still_run(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "AI2D_TEST.tsv").write_text("index\tquestion\tanswer\n", encoding="utf-8")  # no rows
    base = {"engine": ENGINE, "strategies": ["cot"], "format": "free", "ns": [1]}
    with pytest.raises(SlowthinkError, match=r"no benchmark ran \(AI2D: failed, ai2d: no problem found in"):
        run_suite(
            "llava-cot", root, base, tmp_path / "run1", engine=SuiteEngine(), progress=False, plots=False
        )
    shutil.copy(FIX / "MMStar.tsv", root / "MMStar.tsv")
    lines: list[str] = []
    result = run_suite(
        "llava-cot", root, base, tmp_path / "run2", engine=SuiteEngine(), on_line=lines.append, progress=False
    )
    assert [b["name"] for b in result.table["benchmarks"]] == ["MMStar"]
    assert [line.split(":")[0] for line in lines] == [
        "MMBench",
        "MM-Vet",
        "MathVista",
        "AI2D",
        "HallusionBench",
    ]
    assert lines[3].startswith("AI2D: failed, ai2d: no problem found")


def test_cli_json_prints_the_suite_table(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(FIX / "AI2D_TEST.tsv", root / "AI2D_TEST.tsv")
    args = ["eval", "--suite", "llava-cot", "--data-root", str(root), "--engine", ENGINE, "-s", "cot"]
    r = cli.invoke(
        app, [*args, "--format", "free", "--n", "1", "--out", str(tmp_path / "o"), "--no-plots", "--json"]
    )
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout)
    assert overall(table, "AI2D")["values"] == {"accuracy": pytest.approx(200 / 3)}
    assert len(table["skipped"]) == 5 and r.stderr.count("warning:") == 5


def test_mmvet_grades_are_kept_per_grader(suite_run, tmp_path):
    """Another --grade-judge regrades MM-Vet (its grades are kept under the grader's spec)."""
    _, first = suite_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    judge = "py:tests.evaluate.suite_doubles:SuiteEngine#name=judge"
    base = {"engine": ENGINE, "strategies": ["cot"], "format": "free", "ns": [1], "grade_judge": judge}
    policy = SuiteEngine()
    result = run_suite("llava-cot", FIX, base, out, engine=policy, progress=False, plots=False)
    assert policy.calls == []  # nothing to generate, and the policy grades no more
    lines = [json.loads(x) for x in (out / "MM-Vet" / "mmvet_grades.jsonl").read_text().splitlines()]
    assert [x["grader"] for x in lines] == [f"policy:{ENGINE}"] * 4 + [judge] * 4
    assert (
        overall(result.table, "MM-Vet")["values"] == {"score": 37.5} and result.table["mmvet_grader"] == judge
    )


def test_smaller_n_of_a_pathwise_job_is_scored_with_the_official_metric_per_subset(tmp_path):
    """majority at N=2 also reports N=1 (derived from its samples): each subset's predictions are
    scored with CircularEval and the row is the mean over subsets. Sample 0 is the policy's answer,
    sample 1 another letter (right where the policy is wrong); a question counts in a subset only
    when the sample that subset picked is right on every rotation."""
    from slowthink.evaluate.subsample import subsets
    from slowthink.grading import grade
    from slowthink.types import Problem
    from tests.doubles import ScriptedEngine
    from tests.evaluate.suite_doubles import policy_reply

    def reply(r, i):
        text = policy_reply(r.messages[-1].content)
        if i == 0:
            return text
        return "The answer is B." if text.endswith("A.") else "The answer is A."

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(FIX / "MMBench_DEV_EN.tsv", root / "MMBench_DEV_EN.tsv")
    seeds = 4
    base = {"engine": ENGINE, "strategies": ["majority"], "format": "free", "ns": [1, 2], "seeds": seeds}
    engine = ScriptedEngine(reply, supports_images=True)
    result = run_suite("llava-cot", root, base, tmp_path / "run", engine=engine, progress=False, plots=False)
    jobs = result.table["benchmarks"][0]["jobs"]
    assert [(j["n"], j["derived_from"], j["subsets"]) for j in jobs] == [(2, None, None), (1, 2, seeds)]
    full, derived = (j["splits"][0] for j in jobs)

    recs = [json.loads(x) for x in (tmp_path / "run" / "MMBench" / "records.jsonl").read_text().splitlines()]
    right = {}  # rotation id -> (is sample 0 right, is sample 1 right)
    for rec in recs:
        problem = Problem.from_dict(rec["problem"])
        answers = [n["answer"] for n in rec["trace"]["nodes"] if n["parent"] == 0]
        right[rec["id"]] = tuple(grade(a, problem).correct for a in answers)
        assert rec["grade"]["correct"] == right[rec["id"]][0]  # N=2: a 1-1 tie, the first sampled wins
    right0 = {p: r[0] for p, r in right.items()}
    assert any(r == (True, False) for r in right.values()) and any(r == (False, True) for r in right.values())
    groups: dict[int, list[str]] = {}
    for pid in right0:
        groups.setdefault(int(pid) % 1_000_000, []).append(pid)
    assert full["values"]["circular"] == pytest.approx(
        100 * sum(all(right0[p] for p in g) for g in groups.values()) / len(groups)
    )
    # at N=1, subset s of problem p holds sample subsets(2, 1, seeds, p)[s][0]
    per_subset = []
    for s in range(seeds):
        ok = {p: right[p][subsets(2, 1, seeds, p)[s][0]] for p in right}
        per_subset.append(sum(all(ok[p] for p in g) for g in groups.values()) / len(groups))
    expected = 100 * sum(per_subset) / seeds
    assert derived["values"]["circular"] == pytest.approx(expected)
    assert expected != pytest.approx(full["values"]["circular"])  # the subsets change the score
    stems = sorted(p.name for p in (tmp_path / "run" / "predictions").iterdir())
    assert [s for s in stems if "n1-s" in s] == [
        f"slowthink-majority-n1-s{s}_MMBench_DEV_EN.xlsx" for s in range(seeds)
    ] or [s for s in stems if "n1-s" in s] == [
        f"slowthink-majority-n1-s{s}_MMBench_DEV_EN.tsv" for s in range(seeds)
    ]
