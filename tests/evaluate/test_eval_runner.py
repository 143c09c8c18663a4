"""The resumable runner on the scripted engine: records, resume, errors, settings checks, outputs, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slowthink.engines.base import RecordingEngine
from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.cli import app
from slowthink.evaluate.records import read_records
from slowthink.types import Completion, SlowthinkError
from tests.evaluate.eval_doubles import ScriptedEngine, StepScorer

MAP = "question=q,answer=a,category=cat,level=lvl"


def write_data(path, k=6, boom=()):
    with open(path, "w") as f:
        for i in range(k):
            q = f"What is {i} + {i + 3}?" + (" BOOM" if i in boom else "")
            f.write(
                json.dumps({"q": q, "a": str(2 * i + 3), "cat": "easy" if i < 3 else "hard", "lvl": i % 2})
                + "\n"
            )
    return str(path)


@pytest.fixture
def data(tmp_path):
    return write_data(tmp_path / "data.jsonl")


def config(data, out, **kw) -> EvalConfig:
    base = {
        "data": data,
        "fields": MAP,
        "strategies": ["majority", "best_of_n"],
        "ns": [1, 2, 4],
        "engine": "py:tests.evaluate.eval_doubles:ScriptedEngine",
        "scorer": "py:tests.evaluate.eval_doubles:StepScorer",
        "batch_size": 4,
        "out": str(out),
        "seeds": 3,
    }
    return EvalConfig(**{**base, **kw})


def run(cfg, **kw):
    return run_eval(cfg, progress=False, plots=kw.pop("plots", False), **kw)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_records_and_resume_skips_finished(data, tmp_path):
    out = tmp_path / "run"
    eng = RecordingEngine(ScriptedEngine())
    r1 = run(config(data, out), engine=eng, scorer=StepScorer())
    assert r1.new_records == 12 and r1.resumed_records == 0
    # 6 problems, batch 4 -> 2 batches, one engine call per batch; best_of_n takes majority's samples
    assert eng.n_calls == 2 and [c.n_requests for c in eng.calls] == [4, 2]
    recs = lines(out / "records.jsonl")
    assert {(r["strategy"], r["key"]) for r in recs} == {("majority", "n=4"), ("best_of_n", "n=4")}
    rec = recs[0]
    assert set(rec) >= {
        "id",
        "strategy",
        "key",
        "n",
        "problem",
        "trace",
        "answer",
        "grade",
        "compute",
        "error",
    }
    assert rec["grade"]["correct"] in (True, False) and rec["compute"]["samples"] == 4
    assert len([n for n in rec["trace"]["nodes"] if n["parent"] == 0]) == 4

    again = RecordingEngine(ScriptedEngine())
    r2 = run(config(data, out), engine=again, scorer=StepScorer())
    assert again.n_calls == 0 and r2.new_records == 0 and r2.resumed_records == 12
    assert len(lines(out / "records.jsonl")) == 12
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    assert strip(r2.rows) == strip(r1.rows)


def test_path_wise_strategies_share_their_samples(data, tmp_path):
    """majority and best_of_n draw the same seeded samples: generated once, compute charged to both."""
    shared, apart = RecordingEngine(ScriptedEngine()), RecordingEngine(ScriptedEngine())
    a = run(config(data, tmp_path / "a"), engine=shared, scorer=StepScorer())
    b = run(config(data, tmp_path / "b", share_samples=False), engine=apart, scorer=StepScorer())
    assert (shared.n_calls, apart.n_calls) == (2, 4)
    samples = lambda e: sum(c.n_samples for c in e.calls)  # noqa: E731
    assert samples(shared) * 2 == samples(apart)
    ra, rb = (
        read_records(tmp_path / "a" / "records.jsonl")[0],
        read_records(tmp_path / "b" / "records.jsonl")[0],
    )
    for key, rec in ra.items():
        other = rb[key]
        texts = lambda r: [n["text"] for n in r["trace"]["nodes"] if n["parent"] == 0]  # noqa: E731
        assert texts(rec) == texts(other) and rec["answer"] == other["answer"]
        for f in ("generated_tokens", "prompt_tokens", "samples", "engine_calls"):
            assert rec["compute"][f] == other["compute"][f], (key, f)
        reused = [x for x in rec["trace"]["notes"] if "samples reused" in x]
        assert bool(reused) == (key[1] == "best_of_n")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    assert strip(a.rows) == strip(b.rows)


def test_samples_are_not_shared_across_other_settings(data, tmp_path):
    """A trace drawn with another temperature (or format, or fewer samples) is never reused."""
    from slowthink.evaluate.runner import load_problems
    from slowthink.formats import get_format
    from slowthink.search import solve

    problems = load_problems(config(data, tmp_path / "x")).problems[:2]
    eng = RecordingEngine(ScriptedEngine())
    hot = solve(problems, eng, get_format("atomic"), "majority", n=4, temperature=1.0)
    few = solve(problems, eng, get_format("atomic"), "majority", n=2)
    calls = eng.n_calls
    for prior in (hot, few):
        out = solve(
            problems,
            eng,
            get_format("atomic"),
            "best_of_n",
            scorer=StepScorer(),
            n=4,
            reuse={t.problem_id: t for t in prior},
        )
        assert all(not any("reused" in x for x in t.notes) for t in out)
        calls += 1
        assert eng.n_calls == calls
    same = solve(
        problems,
        eng,
        get_format("atomic"),
        "best_of_n",
        scorer=StepScorer(),
        n=2,
        reuse={t.problem_id: t for t in hot[:1]},
        temperature=1.0,
    )
    assert eng.n_calls == calls + 1  # the second problem still generates
    assert any("reused" in x for x in same[0].notes) and not any("reused" in x for x in same[1].notes)
    assert [n.text for n in same[0].nodes if n.parent == 0] == [
        n.text for n in hot[0].nodes if n.parent == 0
    ][:2]
    with pytest.raises(ValueError, match="does not sample whole responses"):
        solve(problems, eng, get_format("atomic"), "quick", reuse={t.problem_id: t for t in hot})


def test_extending_the_plan_runs_only_what_is_new(data, tmp_path):
    out = tmp_path / "run"
    run(config(data, out, limit=4, strategies=["majority"]), engine=ScriptedEngine())
    eng = RecordingEngine(ScriptedEngine())
    r = run(config(data, out, strategies=["majority"]), engine=eng)  # 2 more problems
    assert r.new_records == 2 and r.resumed_records == 4 and eng.n_calls == 1
    r = run(
        config(data, out, strategies=["majority", "step_beam"], ns=[1, 2, 4]),
        engine=ScriptedEngine(),
        scorer=StepScorer(),
    )
    assert r.new_records == 18  # step_beam at N=1, 2, 4; majority untouched
    assert [(x["strategy"], x["n"]) for x in r.rows] == [
        ("majority", 1),
        ("majority", 2),
        ("majority", 4),
        ("step_beam", 1),
        ("step_beam", 2),
        ("step_beam", 4),
    ]


def test_a_failing_problem_gets_an_error_record_and_the_run_goes_on(tmp_path):
    data = write_data(tmp_path / "d.jsonl", k=5, boom={1})
    out = tmp_path / "run"
    r = run(config(data, out, strategies=["majority"], batch_size=3), engine=ScriptedEngine())
    recs = {x["id"]: x for x in lines(out / "records.jsonl")}
    assert len(recs) == 5 and r.errors == 1
    bad = [x for x in recs.values() if x["error"]]
    assert len(bad) == 1 and "BOOM" in bad[0]["problem"]["question"] and bad[0]["trace"] is None
    assert "scripted failure" in bad[0]["error"]
    assert all(x["trace"] is not None for x in recs.values() if not x["error"])
    top = r.rows[-1]
    assert top["errors"] == 1 and top["problems"] == 5  # the error counts as a wrong answer
    assert bad[0]["attempt"] == 1 and r.error_summary["retryable"] == 1
    # --no-retry-errors keeps the error record
    kept = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine(), retry_errors=False)
    assert kept.new_records == 0 and kept.error_summary["records"] == 1
    # by default the same command re-runs it (the newest line wins), up to max_attempts (3)
    for attempt in (2, 3):
        again = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
        assert again.new_records == 1
        records, _ = read_records(out / "records.jsonl")
        assert len(records) == 5 and records[(bad[0]["id"], "majority", "n=4")]["attempt"] == attempt
    spent = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
    assert spent.new_records == 0
    assert spent.error_summary == {
        "records": 1,
        "retryable": 0,
        "exhausted": 1,
        "max_attempts": 3,
        "retry_errors": True,
        "example": "RuntimeError: scripted failure on a BOOM question",
    }
    more = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine(), max_attempts=4)
    assert more.new_records == 1 and len(lines(out / "records.jsonl")) == 8


class OutageEngine(ScriptedEngine):
    """The scripted engine behind a server that is down for the problems in ``down`` (error
    completions, as the HTTP engine returns them), and for every problem when ``down`` is None."""

    def __init__(self, down=None, **kw) -> None:
        super().__init__(**kw)
        self.down = down

    def generate(self, requests):
        out = super().generate(requests)
        for r, cs in zip(requests, out):
            if self.down is None or any(f"What is {i} +" in r.messages[-1].content for i in self.down):
                cs[:] = [Completion("", "error", error="openai engine: cannot reach the server") for _ in cs]
        return out


def test_a_transient_outage_is_finished_by_running_the_same_command_again(tmp_path):
    data = write_data(tmp_path / "d.jsonl", k=6)
    out = tmp_path / "run"
    first = run(config(data, out, strategies=["majority"]), engine=OutageEngine(down={1, 4}))
    assert first.errors == 2 and first.error_summary["retryable"] == 2
    healthy = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
    assert healthy.new_records == 2 and healthy.errors == 0 and healthy.error_summary["records"] == 0
    records, _ = read_records(out / "records.jsonl")
    retried = [r for r in records.values() if r["attempt"] == 2]
    assert sorted(r["problem"]["question"][8] for r in retried) == ["1", "4"]
    # the same answers as a run that never saw the outage
    clean = run(config(data, tmp_path / "clean", strategies=["majority"]), engine=ScriptedEngine())
    assert [(r["strategy"], r["n"], r["accuracy"]) for r in healthy.rows] == [
        (r["strategy"], r["n"], r["accuracy"]) for r in clean.rows
    ]


@pytest.mark.parametrize("k", [1, 5])
def test_an_engine_that_fails_every_problem_stops_the_run(tmp_path, k):
    data = write_data(tmp_path / "d.jsonl", k=k)
    out = tmp_path / "run"
    with pytest.raises(SlowthinkError, match=rf"every problem of the first batch failed \({min(k, 4)} of"):
        run(config(data, out, strategies=["majority"]), engine=OutageEngine())
    assert read_records(out / "records.jsonl")[0] == {}


def test_first_batch_failing_the_same_way_stops_the_run(tmp_path):
    data = write_data(tmp_path / "d.jsonl", k=3, boom={0, 1, 2})
    out = tmp_path / "run"
    with pytest.raises(SlowthinkError, match="every problem of the first batch failed"):
        run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
    assert read_records(out / "records.jsonl")[0] == {}


def test_other_settings_in_the_same_folder_need_force(data, tmp_path):
    out = tmp_path / "run"
    run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
    with pytest.raises(SlowthinkError, match=r"other settings \(format: 'atomic' -> 'free'\).*--force"):
        run(config(data, out, strategies=["majority"], format="free"), engine=ScriptedEngine())
    r = run(config(data, out, strategies=["majority"], format="free"), engine=ScriptedEngine(), force=True)
    assert r.new_records == 6
    assert len(list(out.glob("records.*.bak.jsonl"))) == 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["identity"]["format"] == "free" and cfg["jobs"][0]["key"] == "n=4"


def test_a_line_cut_by_a_kill_is_dropped_and_trimmed(data, tmp_path):
    out = tmp_path / "run"
    run(config(data, out, strategies=["majority"], limit=4), engine=ScriptedEngine())
    with open(out / "records.jsonl", "a") as f:
        f.write('{"v": 1, "id": "data-4", "strategy": "majo')  # a write cut short, no newline
    records, bad = read_records(out / "records.jsonl")
    assert len(records) == 4 and bad == 1
    r = run(config(data, out, strategies=["majority"]), engine=ScriptedEngine())
    assert r.new_records == 2
    assert len(lines(out / "records.jsonl")) == 6  # every line parses again


def test_metrics_plots_and_report(data, tmp_path):
    out = tmp_path / "run"
    r = run(
        config(data, out, strategies=["majority", "best_of_n", "quick"]),
        engine=ScriptedEngine(),
        scorer=StepScorer(),
        plots=True,
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["load"]["problems"] == 6 and m["load"]["skipped"] == {}
    rows = {(x["strategy"], x["n"]): x for x in m["rows"]}
    assert set(rows) == {
        ("majority", 1),
        ("majority", 2),
        ("majority", 4),
        ("best_of_n", 1),
        ("best_of_n", 2),
        ("best_of_n", 4),
        ("quick", None),
    }
    assert rows[("majority", 2)]["derived_from"] == 4 and rows[("majority", 4)]["derived_from"] is None
    # policy tokens of a derived N are those of its k samples: N=2 is half of N=4 (equal-length samples)
    assert rows[("majority", 2)]["policy_generated_tokens"] == pytest.approx(
        rows[("majority", 4)]["policy_generated_tokens"] / 2
    )
    assert rows[("best_of_n", 1)]["scorer_generated_tokens"] == pytest.approx(
        rows[("best_of_n", 4)]["scorer_generated_tokens"] / 4
    )
    for x in m["rows"]:
        assert x["ci95"][0] <= x["accuracy"] <= x["ci95"][1]
        assert set(x["by"]) == {"category", "level"} and set(x["by"]["category"]) == {"easy", "hard"}
    # the full-N row agrees with the records' own grades
    recs = [x for x in lines(out / "records.jsonl") if x["strategy"] == "majority"]
    assert rows[("majority", 4)]["accuracy"] == round(sum(x["grade"]["correct"] for x in recs) / 6, 4)
    for name in ("accuracy_vs_n.png", "accuracy_vs_tokens.png"):
        blob = (out / name).read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 5000
    html = (out / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("data:image/png;base64,") == 2
    assert "What is 0 + 3?" in html and "chosen path" in html and "votes" in html and "by category" in html
    assert out / "report.html" in r.files


def test_model_text_is_escaped_in_the_report(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"q": "What is 1 + 2? <script>alert(1)</script>", "a": "3"}) + "\n")
    out = tmp_path / "run"
    run(
        config(str(data), out, fields="question=q,answer=a", strategies=["majority"]),
        engine=ScriptedEngine(),
        plots=True,
    )
    html = (out / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


cli = CliRunner()


def test_cli_eval_json_and_report_compare(data, tmp_path):
    common = [
        "eval",
        "--data",
        data,
        "--map",
        MAP,
        "--n",
        "1,2",
        "--engine",
        "py:tests.evaluate.eval_doubles:ScriptedEngine",
        "--no-progress",
        "--json",
    ]
    a = cli.invoke(app, [*common, "-s", "majority", "--out", str(tmp_path / "A")])
    assert a.exit_code == 0, a.output
    m = json.loads(a.stdout)
    assert [(x["strategy"], x["n"]) for x in m["rows"]] == [("majority", 1), ("majority", 2)]
    b = cli.invoke(app, [*common, "-s", "majority", "--temperature", "1.0", "--out", str(tmp_path / "B")])
    assert b.exit_code == 0, b.output
    html = tmp_path / "cmp" / "compare.html"
    r = cli.invoke(app, ["report", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(html)])
    assert r.exit_code == 0, r.output
    assert "A" in r.stdout and "B" in r.stdout and "majority" in r.stdout
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 2 and "side by side" in text
    assert (tmp_path / "cmp" / "compare_accuracy_vs_n.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["-s", "majority"], "name the problems"),
        (["--benchmark", "nope", "-s", "majority"], "unknown benchmark 'nope'"),
        (["--data", "{data}", "-s", "nope"], "unknown strategy 'nope'"),
        (["--data", "{data}", "-s", "majority", "--beam", "2"], "--beam apply to none"),
        (["--data", "{data}", "-s", "best_of_n"], "needs a scorer"),
        (
            ["--data", "{data}", "-s", "best_of_n", "--scorer", "x", "--select", "judge", "--n", "1,3"],
            "power of two",
        ),
        (["--data", "{data}", "-s", "majority", "--n", "0,2"], "positive whole numbers"),
        (
            ["--data", "{data}", "-s", "stage_beam", "--scorer", "py:tests.evaluate.eval_doubles:StepScorer"],
            "needs a scorer with pairwise comparisons",
        ),
        (["--data", "{data}", "-s", "majority", "--engine", "py:nope_module:X"], "cannot import X"),
    ],
)
def test_cli_user_errors_are_one_line(data, tmp_path, args, message):
    args = [a.replace("{data}", data) for a in args]
    r = cli.invoke(app, ["eval", *args, "--map", MAP, "--out", str(tmp_path / "r"), "--no-progress"])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert message in text and "Traceback" not in text


def test_plan_jobs_per_strategy_kind(data, tmp_path):
    from slowthink.evaluate import plan_jobs

    cfg = config(
        data, tmp_path / "r", strategies=["cot", "majority", "step_beam", "greedy_step"], ns=[1, 4], beam=3
    )
    jobs = [(j.strategy, j.n, j.report_ns, dict(j.overrides)) for j in plan_jobs(cfg)]
    assert jobs == [
        ("cot", None, (None,), {}),  # N-free: once
        ("majority", 4, (1, 4), {}),  # path-wise: once at the largest N
        ("step_beam", 1, (1,), {"beam": 3}),  # step-wise: once per N
        ("step_beam", 4, (4,), {"beam": 3}),
        ("greedy_step", 1, (1,), {}),  # keeps its beam of 1
        ("greedy_step", 4, (4,), {}),
    ]
    cfg = config(data, tmp_path / "r", strategies=["majority", "step_beam"], ns="1-16", stepwise_ns="2,8")
    jobs = [(j.strategy, j.n, j.report_ns) for j in plan_jobs(cfg)]
    assert jobs == [("majority", 16, tuple(range(1, 17))), ("step_beam", 2, (2,)), ("step_beam", 8, (8,))]
    with pytest.raises(SlowthinkError, match="--n"):
        config(data, tmp_path / "r", stepwise_ns="0,2")


def test_cli_eval_yaml_recipe_flags_win(data, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"data: {data}\nfields: '{MAP}'\nstrategies: [majority]\nns: '1,2'\n"
        "engine: py:tests.evaluate.eval_doubles:ScriptedEngine\ntemperature: 0.3\n"
    )
    out = tmp_path / "R"
    r = cli.invoke(
        app, ["eval", "--config", str(recipe), "--n", "1", "--out", str(out), "--no-progress", "--json"]
    )
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert [(x["strategy"], x["n"]) for x in m["rows"]] == [("majority", 1)]  # --n beat the recipe's ns
    cfg = json.loads((out / "config.json").read_text())
    assert "0.3" in json.dumps(cfg)  # the recipe's temperature was used
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategys: [majority]\n")
    r = cli.invoke(app, ["eval", "--config", str(bad), "--out", str(tmp_path / "X")])
    assert r.exit_code != 0 and "unknown key(s) strategys" in " ".join(r.output.split())


def test_records_made_under_another_default_are_not_mixed_in(data, tmp_path):
    """The run identity keeps options as given (None = the strategy's default); a record made when the
    default was different (step search's aggregate was `min`) must not be resumed as if it were
    made with today's settings."""
    out = tmp_path / "run"
    cfg = config(data, out, strategies=["greedy_step"], ns=[2])
    run(cfg, engine=ScriptedEngine())
    path = out / "records.jsonl"
    recs = lines(path)
    assert all(r["trace"]["config"]["aggregate"] == "last" for r in recs)
    for r in recs[:2]:  # as an older slowthink wrote them
        r["trace"]["config"]["aggregate"] = "min"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(SlowthinkError, match=r"2 record\(s\).*aggregate='min' \(now 'last'\).*--force"):
        run(cfg, engine=ScriptedEngine())
    r = run(cfg, engine=ScriptedEngine(), force=True)
    assert r.new_records == 2
    records, _ = read_records(path)
    assert all(rec["trace"]["config"]["aggregate"] == "last" for rec in records.values())


def test_progress_bar_shows_each_jobs_running_accuracy_also_when_resumed(tmp_path):
    import io

    from rich.console import Console

    data = write_data(tmp_path / "data.jsonl", boom=(1, 4))  # problems 1 and 4 fail: wrong
    buf = io.StringIO()
    for limit in (4, None):  # 4 problems, then the 2 others resumed on top of them
        run_eval(
            config(data, tmp_path / "run", limit=limit, seeds=1),
            progress=True,
            plots=False,
            console=Console(file=buf, width=200),
        )
    bars = [" ".join(line.split()) for line in buf.getvalue().splitlines() if line.strip()]
    assert [b.split("━")[0].strip() for b in bars] == ["majority n=4", "best_of_n n=4"] * 2
    assert ["acc 0.750 (3/4)" in b and " 4/4 " in b for b in bars[:2]] == [True, True]
    assert ["acc 0.667 (4/6)" in b and " 6/6 " in b for b in bars[2:]] == [True, True]
