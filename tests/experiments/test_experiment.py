"""Experiment recipes: the repo's recipes load at every size, bad recipes fail in one line, the
dry-run's compute is as computed by hand, and a tiny recipe runs end to end (and resumes) on the
scripted engine."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from slowthink.cli import app
from slowthink.evaluate.experiment import (
    RECIPES_DIR,
    dry_run_lines,
    load_experiment,
    plan_compute,
    recipe_names,
    run_experiment,
)
from slowthink.types import SlowthinkError
from tests.evaluate.eval_doubles import ScriptedEngine
from tests.evaluate.test_eval_runner import MAP, write_data

ENGINE = "py:tests.evaluate.eval_doubles:ScriptedEngine"
SCORER = "py:tests.evaluate.eval_doubles:StepScorer"


def write_recipe(tmp_path, **changes):
    data = write_data(tmp_path / "data.jsonl", k=6)
    recipe = {
        "title": "tiny",
        "defaults": {
            "data": data,
            "fields": MAP,
            "engine": ENGINE,
            "scorer": SCORER,
            "limit": 5,
            "batch_size": 2,
            "seeds": 2,
        },
        "arms": {
            "paths": {"strategies": ["majority", "best_of_n"], "ns": [1, 2, 4]},
            "steps": {"strategies": ["step_beam"], "ns": [2], "max_depth": 3, "beam": 2},
        },
        "tables": [
            {
                "title": "scaling",
                "columns": "n",
                "rows": [
                    {"label": "Majority", "arm": "paths", "strategy": "majority"},
                    {"label": "Beam", "arm": "steps"},
                ],
            },
            {
                "title": "at the largest N",
                "columns": "accuracy",
                "rows": [
                    {"label": "BoN", "arm": "paths", "strategy": "best_of_n"},
                    {"label": "BoN N=2", "arm": "paths", "strategy": "best_of_n", "n": 2},
                ],
            },
        ],
    }
    recipe.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["llava-cot-search", "atomthink"])
def test_repo_recipes_load_at_every_size(name, tmp_path):
    assert name in recipe_names()
    sizes = [None, *yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())["sizes"]]
    assert {"cpu", "cpu-gsm8k"} <= set(sizes)
    for size in sizes:
        exp = load_experiment(name, size=size, out=tmp_path)
        assert exp.tables and all(plan_compute(exp))
        assert all(cfg.out == str(tmp_path / arm) for arm, cfg in exp.arms.items())
    cpu = load_experiment(name, size="cpu", out=tmp_path)
    assert {cfg.benchmark for cfg in cpu.arms.values()} == {"reasoning-gym:chain_sum"}
    assert {cfg.engine for cfg in cpu.arms.values()} == {"llamacpp"}


def test_llava_cot_recipe_is_the_papers_comparison(tmp_path):
    exp = load_experiment("llava-cot-search", out=tmp_path)
    assert exp.arms["stage-beam"].preset == "llava-cot"
    assert exp.arms["stage-beam"].format == exp.arms["best-of-n"].format == "stages#style=llava-cot"
    assert exp.arms["no-tags"].format == "free"
    assert {cfg.scorer for cfg in exp.arms.values()} == {"judge#prompts=llava-cot"}
    assert all(cfg.ns == [2, 4, 8] for cfg in exp.arms.values())


def test_command_line_overrides_win(tmp_path):
    exp = load_experiment(
        "atomthink", overrides={"scorer": "symbolic", "limit": 3, "engine": None}, out=tmp_path
    )
    assert {cfg.scorer for cfg in exp.arms.values()} == {"symbolic"}
    assert {cfg.limit for cfg in exp.arms.values()} == {3}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, "unknown key(s) colour"),
        ({"arms": {"a": {"strategies": ["majority"], "beem": 2}}}, "arm 'a': unknown key(s) beem"),
        ({"arms": {"a": {"strategies": ["nope"]}}}, "arm 'a': unknown strategy 'nope'"),
        ({"arms": {}}, "arms is empty"),
        ({"tables": [{"rows": [{"arm": "zzz"}]}]}, "arm 'zzz' is not one of paths, steps"),
        (
            {"tables": [{"rows": [{"arm": "steps", "strategy": "majority"}]}]},
            "runs step_beam, not 'majority'",
        ),
        ({"tables": [{"columns": "rows", "rows": [{"arm": "steps"}]}]}, "columns must be 'n' or 'accuracy'"),
        ({"tables": [{"rows": [{"arm": "paths", "n": 3}]}]}, "reports majority at N 1, 2, 4, not 3"),
        ({"sizes": {"cpu": {"engin": "x"}}}, "sizes.cpu: unknown key(s) engin"),
    ],
)
def test_bad_recipes_fail_in_one_line(tmp_path, change, message):
    path = write_recipe(tmp_path, **change)
    with pytest.raises(SlowthinkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment(str(path), out=tmp_path / "out")
    r = CliRunner().invoke(app, ["experiment", str(path), "--dry-run", "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) == 1


def test_unknown_size_and_name(tmp_path):
    with pytest.raises(SlowthinkError, match="no size 'gpu'"):
        load_experiment(str(write_recipe(tmp_path)), size="gpu")
    with pytest.raises(SlowthinkError, match="no experiment recipe 'nope'"):
        load_experiment("nope")


def test_dry_run_compute_by_hand(tmp_path):
    """5 problems in batches of 2 (3 batches). majority samples once at N=4 (one call per batch,
    4 responses a problem) and best_of_n takes its samples; step_beam n=2, beam 2, max_depth 3:
    <= 3 calls per batch and 3 x 2 x 2 = 12 candidate steps a problem."""
    exp = load_experiment(str(write_recipe(tmp_path)), out=tmp_path / "out")
    got = [
        (p.arm, p.job.label, p.depth, p.candidates, p.engine_calls, p.total_candidates)
        for p in plan_compute(exp)
    ]
    assert got == [
        ("paths", "majority n=4", 1, 4, 3, 20),
        ("paths", "best_of_n n=4", 1, 4, 0, 0),
        ("steps", "step_beam n=2", 3, 12, 9, 60),
    ]
    lines = dry_run_lines(exp)
    assert "paths | majority n=4 | 1,2,4 | 1 | 4 | 3 | 20" in lines
    assert "steps | step_beam n=2 | 2 | 3 | 12 | 9 | 60" in lines
    assert "paths | best_of_n n=4 (samples of majority n=4) | 1,2,4 | 1 | 4 | 0 | 0" in lines
    assert "total <= 12 policy engine calls, <= 80 candidates" in lines
    apart = load_experiment(str(tmp_path / "tiny.yaml"), overrides={"share_samples": False}, out=tmp_path)
    assert "total <= 15 policy engine calls, <= 100 candidates" in dry_run_lines(apart)
    r = CliRunner().invoke(
        app, ["experiment", str(tmp_path / "tiny.yaml"), "--dry-run", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 0 and "total <= 12 policy engine calls" in r.output
    assert not (tmp_path / "o").exists()  # nothing written, no model loaded


def test_tiny_experiment_end_to_end_and_resume(tmp_path):
    path = write_recipe(tmp_path)
    out = tmp_path / "out"
    exp = load_experiment(str(path), out=out)
    ScriptedEngine.generate_calls = 0
    results, files = run_experiment(exp, out, progress=False, plots=True)
    bound = sum(p.engine_calls or 0 for p in plan_compute(exp))
    assert 0 < ScriptedEngine.generate_calls <= bound  # the dry run's bound holds
    assert [f.name for f in files] == ["experiment.md", "report.html"]
    assert {arm: r.new_records for arm, r in results.items()} == {"paths": 10, "steps": 5}
    md = (out / "experiment.md").read_text()
    metrics = {arm: json.loads((out / arm / "metrics.json").read_text()) for arm in exp.arms}
    maj = {r["n"]: r for r in metrics["paths"]["rows"] if r["strategy"] == "majority"}
    beam = {r["n"]: r for r in metrics["steps"]["rows"] if r["strategy"] == "step_beam"}
    assert "| method | N=1 | N=2 | N=4 |" in md
    cell = lambda r: f"{r['accuracy']:.3f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"  # noqa: E731
    assert f"| Majority | {cell(maj[1])} | {cell(maj[2])} | {cell(maj[4])} |" in md
    assert f"| Beam | – | {cell(beam[2])} | – |" in md
    bon = {r["n"]: r for r in metrics["paths"]["rows"] if r["strategy"] == "best_of_n"}
    assert f"| BoN | 4 | {cell(bon[4])} |" in md and f"| BoN N=2 | 2 | {cell(bon[2])} |" in md
    assert "paths" in (out / "report.html").read_text()
    again, _ = run_experiment(load_experiment(str(path), out=out), out, progress=False, plots=False)
    assert {arm: r.new_records for arm, r in again.items()} == {"paths": 0, "steps": 0}
    assert (out / "experiment.md").read_text() == md
    r = CliRunner().invoke(app, ["experiment", str(path), "--out", str(out), "--no-progress", "--no-plots"])
    assert r.exit_code == 0, r.output
    assert "| Majority |" in r.output and "experiment.md" in r.output
