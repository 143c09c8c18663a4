"""Errors every problem would hit stop the run before any generation (one line, exit 2, no records);
per-problem errors stay per problem and the summary gives accuracy over the problems that ran.
Token totals: policy + scorer/judge, prompt + generated, on a scripted run whose costs are known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.cli import app, error_lines
from slowthink.evaluate.records import read_records
from slowthink.scorers.base import ScoreResult
from slowthink.types import Problem, SlowthinkError
from tests.evaluate.eval_doubles import ScriptedEngine, StepScorer

REPO = Path(__file__).resolve().parents[2]
ENGINE = "py:tests.evaluate.eval_doubles:ScriptedEngine"
SCORER = "py:tests.evaluate.eval_doubles:StepScorer"


def write_data(path: Path, k: int = 4, boom=(), image: str | None = None) -> str:
    with open(path, "w") as f:
        for i in range(k):
            q = f"What is {i} + {i + 3}?" + (" BOOM" if i in boom else "")
            rec = {"q": q, "a": str(2 * i + 3)}
            if image is not None:
                rec["img"] = image
            f.write(json.dumps(rec) + "\n")
    return str(path)


def png(path: Path) -> str:
    from PIL import Image

    Image.new("RGB", (4, 4), (200, 10, 10)).save(path)
    return str(path)


def config(data: str, out: Path, **kw) -> EvalConfig:
    base = {
        "data": data,
        "fields": "question=q,answer=a",
        "strategies": ["majority"],
        "ns": [1, 2],
        "engine": ENGINE,
        "batch_size": 4,
        "out": str(out),
    }
    return EvalConfig(**{**base, **kw})


def run(cfg, **kw):
    return run_eval(cfg, progress=False, plots=kw.pop("plots", False), **kw)


def no_records(out: Path) -> bool:
    return read_records(out / "records.jsonl")[0] == {}


# -- configuration errors every problem would hit ------------------------------------------------


def test_images_on_a_text_only_engine_stop_before_any_generation(tmp_path):
    data = write_data(tmp_path / "d.jsonl", image=png(tmp_path / "img.png"))
    out = tmp_path / "run"
    before = ScriptedEngine.generate_calls
    with pytest.raises(SlowthinkError) as e:
        run(config(data, out, fields="question=q,answer=a,image=img"))
    msg = str(e.value)
    assert "text-only" in msg and "4 of 4 problem(s) have images" in msg and "--ignore-images" in msg
    assert "\n" not in msg
    assert ScriptedEngine.generate_calls == before  # no engine call was made
    assert no_records(out)
    # the fix the message names works in the same folder (no --force: it holds no records)
    r = run(config(data, out, fields="question=q,answer=a,image=img", ignore_images=True))
    assert r.new_records == 4 and r.errors == 0 and ScriptedEngine.generate_calls > before


def test_solve_checks_images_before_the_engine_runs():
    from slowthink.formats import get_format
    from slowthink.search import solve

    engine = ScriptedEngine()
    before = ScriptedEngine.generate_calls
    problems = [
        Problem(id="a", question="What is 1 + 2?"),
        Problem(id="b", question="What is 2 + 2?", images=["/x/b.png"]),
    ]
    with pytest.raises(
        SlowthinkError, match=r"text-only but 1 of 2 problem\(s\) have images \(e\.g\. b: /x/b\.png\)"
    ):
        solve(problems, engine, get_format("atomic"), "majority", n=2)
    assert ScriptedEngine.generate_calls == before
    assert solve(problems[:1], engine, get_format("atomic"), "majority", n=2)[0].answer == "3"


def test_cli_stops_with_one_line_and_exit_2_in_a_real_process(tmp_path):
    data = write_data(tmp_path / "d.jsonl", image=png(tmp_path / "img.png"))
    out = tmp_path / "run"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "slowthink.cli",
            "eval",
            "--data",
            data,
            "--map",
            "question=q,answer=a,image=img",
            "--engine",
            ENGINE,
            "--out",
            str(out),
            "--no-progress",
            "--n",
            "1,2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--ignore-images" in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (out / "records.jsonl").exists()


cli = CliRunner()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engine", "llamacpp", "--model", "/nope/m.gguf"], "model not found: /nope/m.gguf"),
        (["--engine", "hf:/nope/folder"], "model not found: /nope/folder (engine 'hf')"),
        (
            ["--engine", ENGINE, "--grade-judge", "llamacpp:/nope/j.gguf"],
            "pass --grade-judge with an existing path",
        ),
        (["--engine", ENGINE, "--format", "nope"], "unknown format 'nope'"),
        (["--engine", ENGINE, "-s", "step_beam"], "needs a scorer"),
        (
            ["--engine", ENGINE, "-s", "stage_beam", "--scorer", SCORER],
            "needs a scorer with pairwise comparisons",
        ),
    ],
)
def test_configuration_errors_are_one_line_exit_2_and_write_no_records(tmp_path, args, message):
    data = write_data(tmp_path / "d.jsonl")
    out = tmp_path / "run"
    r = cli.invoke(
        app,
        [
            "eval",
            "--data",
            data,
            "--map",
            "question=q,answer=a",
            "--out",
            str(out),
            "--no-progress",
            "--n",
            "1,2",
            *args,
        ],
    )
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert no_records(out)


def test_a_missing_model_is_found_before_the_run_folder_is_touched(tmp_path):
    data = write_data(tmp_path / "d.jsonl")
    out = tmp_path / "run"
    with pytest.raises(SlowthinkError, match="model not found"):
        run(config(data, out, engine="llamacpp", model=str(tmp_path / "missing.gguf")))
    assert not out.exists()


# -- per-problem errors: accuracy over the problems that ran ------------------------------------


def test_one_failing_problem_of_four_accuracy_over_the_three_that_ran(tmp_path):
    data = write_data(tmp_path / "d.jsonl", k=4, boom={2})
    out = tmp_path / "run"
    r = run(config(data, out, engine=f"{ENGINE}#p_right=1.0"), plots=True)
    assert r.errors == 1
    for row in r.rows:  # N=2 as run and N=1 derived from it
        assert (row["problems"], row["ran"], row["errors"]) == (4, 3, 1)
        assert row["accuracy_ran"] == 1.0 and row["accuracy"] == 0.75  # all 3 that ran are right
        assert row["ci95_ran"][0] < 1.0 == row["ci95_ran"][1]
    m = json.loads((out / "metrics.json").read_text())
    assert m["rows"][0]["accuracy_ran"] == 1.0 and m["rows"][0]["ran"] == 3
    html = (out / "report.html").read_text()
    assert "accuracy over ran" in html and "errors as wrong" in html
    assert error_lines(m["rows"])[-1] == (
        "majority N=2: accuracy 1.000 over 3 problems that ran; 1 error (0.750 with errors counted wrong)"
    )
    c = cli.invoke(
        app,
        [
            "eval",
            "--data",
            data,
            "--map",
            "question=q,answer=a",
            "--out",
            str(out),
            "--engine",
            f"{ENGINE}#p_right=1.0",
            "--n",
            "1,2",
            "--no-progress",
            "--no-plots",
        ],
    )
    assert c.exit_code == 0, c.output
    assert "accuracy 1.000 over 3 problems that ran; 1 error (0.750" in " ".join(c.stdout.split())


# -- compute totals ------------------------------------------------------------------------------


class FixedCostScorer(StepScorer):
    """StepScorer's scores, at a known price: 100 prompt and 7 generated tokens per scored path."""

    name = "fixed-cost"

    def score(self, queries):
        return [
            ScoreResult(r.scores, prompt_tokens=100, generated_tokens=7, calls=1)
            for r in super().score(queries)
        ]


#: ScriptedEngine's whole response with steps=2 (25 words = 25 "tokens"), 20 prompt tokens a sample.
SAMPLE_GEN, SAMPLE_PROMPT = 9 + 8 + 8, 20


def test_total_tokens_count_policy_and_scorer_prompt_and_generated(tmp_path):
    data = write_data(tmp_path / "d.jsonl", k=3)
    out = tmp_path / "run"
    r = run(
        config(
            data, out, strategies=["majority", "best_of_n"], ns=[1, 2, 4], scorer=SCORER, share_samples=False
        ),
        scorer=FixedCostScorer(),
        plots=True,
    )
    rows = {(x["strategy"], x["n"]): x for x in r.rows}
    for n in (1, 2, 4):  # N=1, 2 derived from N=4: exact generated tokens, k/N of prompt and scorer
        b, m = rows[("best_of_n", n)], rows[("majority", n)]
        assert b["policy_generated_tokens"] == m["policy_generated_tokens"] == n * SAMPLE_GEN
        assert b["policy_tokens"] == m["policy_tokens"] == n * (SAMPLE_GEN + SAMPLE_PROMPT)
        assert (b["scorer_prompt_tokens"], b["scorer_generated_tokens"]) == (100 * n, 7 * n)
        assert b["total_tokens"] == n * (SAMPLE_GEN + SAMPLE_PROMPT + 100 + 7)
        assert m["total_tokens"] == m["policy_tokens"]  # majority has no scorer
        assert b["generated_tokens"] == n * (SAMPLE_GEN + 7)  # the old axis: generated only
    saved = json.loads((out / "metrics.json").read_text())["rows"]
    assert [x["total_tokens"] for x in saved] == [x["total_tokens"] for x in r.rows]
    html = (out / "report.html").read_text()
    assert "total tok" in html and "policy + scorer/judge tokens, prompt + generated" in html


def test_the_token_plot_uses_total_compute_by_default_and_policy_beside_it(tmp_path, monkeypatch):
    from slowthink.evaluate import plots

    rows = [
        {
            "strategy": "best_of_n",
            "n": n,
            "problems": 3,
            "accuracy": 0.5,
            "ci95": [0.2, 0.8],
            "oracle": None,
            "policy_prompt_tokens": 20.0 * n,
            "policy_generated_tokens": 24.0 * n,
            "scorer_prompt_tokens": 100.0 * n,
            "scorer_generated_tokens": 7.0 * n,
        }
        for n in (1, 2, 4)
    ]  # no total_tokens field (a metrics.json from before it): summed from the parts
    drawn: list[tuple[str, str, list[float]]] = []
    real = plots._plot

    def spy(ax, data, axis):
        real(ax, data, axis)
        drawn.append((axis, ax.get_xlabel(), [float(x) for x in ax.lines[0].get_xdata()]))

    monkeypatch.setattr(plots, "_plot", spy)
    paths = plots.plot_scaling(plots.series(rows), tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_n.png", "accuracy_vs_tokens.png"]
    assert [d[0] for d in drawn] == ["n", "total", "policy"]
    assert drawn[1][2] == [151.0, 302.0, 604.0] and "policy + scorer/judge" in drawn[1][1]
    assert drawn[2][2] == [44.0, 88.0, 176.0] and drawn[2][1].startswith("policy tokens")
    drawn.clear()
    plots.plot_scaling(plots.series(rows), tmp_path, token_panels=("policy",))
    assert [d[0] for d in drawn] == ["n", "policy"]
    with pytest.raises(SlowthinkError, match="choose from"):
        plots.plot_scaling(plots.series(rows), tmp_path, token_panels=("nope",))
