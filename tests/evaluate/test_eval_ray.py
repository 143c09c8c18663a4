"""``slowthink eval --ray``: batches sharded across the workers of a real local Ray cluster
(``ray_cluster``), each with its own engine built from the spec, records written by the driver to
the one records.jsonl; the same records as an in-process run, each exactly once, also when a worker
dies mid-run (its batch is re-queued on a new worker)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slowthink.evaluate import EvalConfig, run_eval
from slowthink.evaluate.cli import app
from slowthink.types import SlowthinkError
from tests.evaluate.test_eval_resume_kill import N_PROBLEMS, command, comparable, write_data

ENGINE = "py:tests.evaluate.eval_doubles:ScriptedEngine"
SCORER = "py:tests.evaluate.eval_doubles:StepScorer"
# majority n=2 (N=1 derived), step_beam n=1 and n=2, best_of_n n=2 (taking majority's samples)
RECORDS_PER_RUN = N_PROBLEMS * 4


def config(data: str, out, **kw) -> EvalConfig:
    base = dict(
        data=data,
        fields="question=q,answer=a",
        strategies=["majority", "step_beam", "best_of_n"],
        ns=[1, 2],
        engine=ENGINE,
        scorer=SCORER,
        batch_size=2,
        out=str(out),
    )
    return EvalConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same eval in this process."""
    tmp = tmp_path_factory.mktemp("local")
    data = write_data(tmp / "d.jsonl")
    result = run_eval(config(data, tmp / "run"), progress=False, plots=False)
    return data, comparable(tmp / "run" / "records.jsonl"), result.rows


def accuracies(rows):
    return [(r["strategy"], r["n"], r["accuracy"]) for r in rows]


@pytest.mark.ray
def test_eval_on_ray_writes_the_records_of_a_local_run_each_once(ray_cluster, local_run, tmp_path):
    data, ref, ref_rows = local_run
    out = tmp_path / "ray"
    # the kill-and-resume test's command (majority, step_beam), best_of_n added, on 2 Ray workers
    args = command(data, out, 0.0)[3:] + ["-s", "best_of_n", "--ray", ray_cluster, "--ray-workers", "2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)  # nothing from Ray on stdout
    assert m["records"]["new"] == RECORDS_PER_RUN and m["records"]["errors_new"] == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == RECORDS_PER_RUN
    assert comparable(out / "records.jsonl") == ref  # also: no record twice
    assert accuracies(m["rows"]) == accuracies(ref_rows)
    bon = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert all(
        any("samples reused" in n for n in x["trace"]["notes"]) for x in bon if x["strategy"] == "best_of_n"
    )

    again = CliRunner().invoke(app, args)  # resumable: nothing left to do
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["records"] == {**m["records"], "new": 0, "resumed": RECORDS_PER_RUN}


@pytest.mark.ray
def test_a_worker_that_dies_mid_run_has_its_batch_requeued(ray_cluster, local_run, tmp_path):
    data, ref, ref_rows = local_run
    marker = tmp_path / "died"
    cfg = config(
        data,
        tmp_path / "ray",
        ray=ray_cluster,
        ray_workers=2,
        engine=f"{ENGINE}#die_on=What is 5 + 11?,marker={marker}",
    )
    result = run_eval(cfg, progress=False, plots=False)
    assert marker.exists()  # a worker did die on problem 5
    assert result.new_records == RECORDS_PER_RUN and result.errors == 0
    assert comparable(tmp_path / "ray" / "records.jsonl") == ref
    assert accuracies(result.rows) == accuracies(ref_rows)


def test_engine_objects_cannot_go_to_ray_workers(tmp_path):
    from tests.evaluate.eval_doubles import ScriptedEngine

    data = write_data(tmp_path / "d.jsonl")
    with pytest.raises(SlowthinkError, match="each worker builds its engine and scorer from the config"):
        run_eval(
            config(data, tmp_path / "run", ray="auto"), engine=ScriptedEngine(), progress=False, plots=False
        )
