"""``kill -9`` mid-run, resume, and get the same records as a run never interrupted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.killrun import kill_9_after, run_cli

N_PROBLEMS = 8


def write_data(path: Path) -> str:
    with path.open("w") as f:
        for i in range(N_PROBLEMS):
            f.write(json.dumps({"q": f"What is {i} + {2 * i + 1}?", "a": str(3 * i + 1)}) + "\n")
    return str(path)


def command(data: str, out: Path, delay: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "slowthink.evaluate.cli",
        "eval",
        "--data",
        data,
        "--map",
        "question=q,answer=a",
        "-s",
        "majority,step_beam",
        "--n",
        "1,2",
        "--engine",
        f"py:tests.evaluate.eval_doubles:ScriptedEngine#delay={delay}",
        "--scorer",
        "py:tests.evaluate.eval_doubles:StepScorer",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--no-plots",
        "--json",
    ]


def comparable(path: Path) -> dict:
    """Records without what legitimately differs between runs (times, batch composition)."""
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        key = (r["id"], r["strategy"], r["key"])
        assert key not in out, f"record {key} written twice"
        t = r["trace"]
        out[key] = (
            r["answer"],
            r["grade"]["correct"],
            r["error"],
            t["path"],
            [(n["parent"], n["text"], n["score"], n["answer"]) for n in t["nodes"]],
            r["compute"]["generated_tokens"],
            r["compute"]["scorer_generated_tokens"],
        )
    return out


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_data(tmp_path / "d.jsonl")
    total = N_PROBLEMS * 3  # majority n=2 (N=1 derived), step_beam n=1, step_beam n=2

    ref = run_cli(command(data, tmp_path / "ref", 0.0))
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "killed"
    records = out / "records.jsonl"
    written = kill_9_after(command(data, out, 0.15), records, lines=4)  # two batches on disk
    assert 0 < written < total

    resumed = run_cli(command(data, out, 0.15))
    assert resumed.returncode == 0, resumed.stderr
    m = json.loads(resumed.stdout)
    assert m["records"]["resumed"] >= written - 1 and m["records"]["new"] + m["records"]["resumed"] == total

    assert comparable(records) == comparable(tmp_path / "ref" / "records.jsonl")
    ref_rows = json.loads((tmp_path / "ref" / "metrics.json").read_text())["rows"]
    got_rows = m["rows"]
    assert [(r["strategy"], r["n"], r["accuracy"]) for r in got_rows] == [
        (r["strategy"], r["n"], r["accuracy"]) for r in ref_rows
    ]
