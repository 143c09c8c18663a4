"""``slowthink annotate --ray``: batches of items sharded across the workers of a real local Ray
cluster (``ray_cluster``), each worker with its own teacher engine built from the spec, the records
appended by the driver alone to the one ``annotations.jsonl``: the records and datasets of an
in-process run (same seeds), each once; a driver killed with ``kill -9`` and the same command run
again loses and duplicates nothing; a bad address is one error line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slowthink.annotate import AnnotateConfig, run_annotate
from slowthink.annotate.cli import app
from slowthink.clikit import run_app
from slowthink.types import SlowthinkError
from tests.annotate.conftest import write_jsonl
from tests.annotate.test_annotate_resume_kill import N_ITEMS, command, comparable, stages_reply
from tests.killrun import kill_9_after, run_cli

ACCEPTED = N_ITEMS - 4  # items 0, 3, 6, 9 get no stage tags


def seeded_reply(prompt: str, body: dict) -> str:
    """The kill test's teacher, its reply marked with the request's seed (so equal records prove
    equal seeds)."""
    return stages_reply(prompt, body).replace("<SUMMARY> ", f"<SUMMARY> seed {body.get('seed')}: ", 1)


def write_items(tmp_path) -> str:
    return write_jsonl(
        tmp_path / "d.jsonl", [{"q": f"What is {i} + 1?", "a": str(i + 1)} for i in range(N_ITEMS)]
    )


def invoke(args: list[str]) -> dict:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)  # nothing from Ray on stdout


@pytest.mark.ray
def test_annotate_on_ray_writes_the_records_of_a_local_run_each_once(
    ray_cluster, scripted, tmp_path, monkeypatch
):
    # set after the cluster started, so the workers have the key only if the driver hands it over
    monkeypatch.setenv("SLOWTHINK_RAY_TEST_KEY", "sk-ray-test")
    data = write_items(tmp_path)
    proxy, _, spec = scripted(seeded_reply, delay_s=0.2)
    ref = invoke(command(spec, data, tmp_path / "ref")[3:])
    assert ref["accepted"] == ACCEPTED and "teacher_engine_stats" in ref

    recipe = tmp_path / "ray.yaml"  # the Ray settings from a YAML recipe, the rest as flags
    recipe.write_text(f"ray: '{ray_cluster}'\nray_workers: 2\n")
    proxy.max_in_flight, proxy.attempts[:] = 0, []
    out = tmp_path / "ray"
    args = command(spec, data, out)[3:] + ["--config", str(recipe), "--max-concurrency", "1"]
    got = invoke(args + ["--api-key-env", "SLOWTHINK_RAY_TEST_KEY"])
    assert (got["new"], got["resumed"], got["accepted"], got["errors"]) == (N_ITEMS, 0, ACCEPTED, 0)
    assert got["rejected_by_reason"] == ref["rejected_by_reason"] == {"tags": 4}
    assert "teacher_engine_stats" not in got  # the engines lived in the workers
    assert proxy.max_in_flight == 2  # one request at a time per worker, two workers at once
    sent = proxy.generation_attempts()
    assert len(sent) == N_ITEMS and {a.headers.get("authorization") for a in sent} == {"Bearer sk-ray-test"}
    records = out / "annotations.jsonl"
    assert len(records.read_text().splitlines()) == N_ITEMS
    assert comparable(records) == comparable(tmp_path / "ref" / "annotations.jsonl")  # and each once
    assert "seed " in next(r for r in map(json.loads, records.read_text().splitlines()))["response"]
    for name in ("sft_llava.jsonl",):  # the same rows in the same (input) order
        assert (out / name).read_text() == (tmp_path / "ref" / name).read_text()

    again = invoke(args)  # resumable: nothing left to do, no worker started
    assert (again["new"], again["resumed"], again["accepted"]) == (0, N_ITEMS, ACCEPTED)
    assert len(records.read_text().splitlines()) == N_ITEMS


@pytest.mark.ray
@pytest.mark.slow
def test_kill_9_of_the_driver_then_the_same_command_loses_and_duplicates_nothing(
    ray_cluster, scripted, tmp_path
):
    data = write_items(tmp_path)
    _, _, fast = scripted(seeded_reply)
    ref = run_cli(command(fast, data, tmp_path / "ref"))  # in one process
    assert ref.returncode == 0, ref.stderr

    _, _, slow = scripted(seeded_reply, delay_s=0.5)
    out = tmp_path / "killed"
    records = out / "annotations.jsonl"
    ray_command = command(slow, data, out) + [
        "--ray",
        ray_cluster,
        "--ray-workers",
        "2",
        "--max-concurrency",
        "1",
    ]
    written = kill_9_after(ray_command, records, lines=4, timeout_s=120)  # two batches on disk
    assert 0 < written < N_ITEMS

    resumed = run_cli(ray_command, timeout_s=180)  # the dead driver's workers are gone with it
    assert resumed.returncode == 0, resumed.stderr
    s = json.loads(resumed.stdout)
    assert s["resumed"] == written and s["new"] + s["resumed"] == N_ITEMS and s["accepted"] == ACCEPTED
    assert comparable(records) == comparable(tmp_path / "ref" / "annotations.jsonl")
    assert (out / "sft_llava.jsonl").read_text() == (tmp_path / "ref" / "sft_llava.jsonl").read_text()


def test_a_bad_ray_address_is_one_error_line(scripted, tmp_path, capsys):
    pytest.importorskip("ray")
    from tests.fixtures.ray_cluster import free_port

    _, _, spec = scripted(seeded_reply)
    address = f"127.0.0.1:{free_port()}"
    args = [a for a in command(spec, write_items(tmp_path), tmp_path / "o")[3:] if a != "--no-progress"]
    code = run_app(app, args + ["--ray", address])  # with the progress bar: it never starts
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot connect to Ray at '{address}' (nothing answers" in err and "ray start --head" in err
    assert not (tmp_path / "o" / "annotations.jsonl").exists()


def test_ray_settings_are_checked_and_engine_objects_stay_in_this_process(tmp_path):
    from tests.doubles import ScriptedEngine

    with pytest.raises(SlowthinkError, match="Ray workers must be >= 1, got 0"):
        AnnotateConfig(mode="stages", out="x", data="d", ray="auto", ray_workers=0)
    data = write_items(tmp_path)
    cfg = AnnotateConfig(
        mode="stages", data=data, fields="question=q,answer=a", out=str(tmp_path / "o"), ray="auto"
    )
    with pytest.raises(SlowthinkError, match="each worker builds its engines from the config"):
        run_annotate(cfg, teacher=ScriptedEngine(lambda r, i: "x"), progress=False)
