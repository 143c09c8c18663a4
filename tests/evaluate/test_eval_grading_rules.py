"""Grading rules of a run (``-O abs_tol=...``, YAML ``benchmark_options``) decide its grades and are
recorded in ``metrics.json``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from slowthink.evaluate.cli import app

ENGINE = "py:tests.evaluate.eval_doubles:ScriptedEngine#p_right=1.0"
cli = CliRunner()


def write_floats(path):
    """Golds 0.0004 off the sums the scripted engine answers: right only within abs_tol 0.001."""
    rows = [{"q": f"What is {i} + {i + 2}?", "a": f"{2 * i + 2}.0004"} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run_cli(*args):
    r = cli.invoke(app, ["eval", *args, "--no-progress", "--no-plots", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_abs_tol_option_grades_and_is_recorded(tmp_path):
    data = write_floats(tmp_path / "f.jsonl")
    common = [
        "--data",
        data,
        "--map",
        "question=q,answer=a",
        "--strategy",
        "majority",
        "--n",
        "1",
        "--engine",
        ENGINE,
    ]
    exact = run_cli(*common, "--out", str(tmp_path / "exact"))
    assert exact["rows"][0]["accuracy"] == 0.0
    assert exact["grading"]["number_rules"]["abs_tol"] == {}
    tol = run_cli(*common, "-O", "abs_tol=0.001", "--out", str(tmp_path / "tol"))
    assert tol["rows"][0]["accuracy"] == 1.0
    written = json.loads((tmp_path / "tol" / "metrics.json").read_text())
    assert written["grading"]["number_rules"] == {"precision": {}, "abs_tol": {"0.001": 4}, "rel_tol": {}}
    assert written["config"]["benchmark_options"] == {"abs_tol": 0.001}
    rec = json.loads((tmp_path / "tol" / "records.jsonl").read_text().splitlines()[0])
    assert rec["problem"]["abs_tol"] == 0.001 and rec["grade"]["correct"] is True


def test_yaml_recipe_rules(tmp_path):
    data = write_floats(tmp_path / "f.jsonl")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"data: {data}\nfields: 'question=q,answer=a'\nstrategies: [majority]\nns: '1'\nengine: '{ENGINE}'\n"
        "benchmark_options: {rel_tol: 0.001}\n"
    )
    m = run_cli("--config", str(recipe), "--out", str(tmp_path / "R"))
    assert m["rows"][0]["accuracy"] == 1.0  # 0.0004 off golds of 2 to 8: within 0.1%
    assert m["grading"]["number_rules"]["rel_tol"] == {"0.001": 4}
