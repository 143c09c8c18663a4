"""``kill -9`` a real ``slowthink annotate`` subprocess mid-run, run the same command again: nothing
lost, nothing duplicated, the same records as a run never interrupted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.annotate.conftest import write_jsonl
from tests.killrun import kill_9_after, run_cli

N_ITEMS = 10


def stages_reply(prompt: str, body: dict) -> str:
    q = prompt.split("Question: ", 1)[1].split("\n", 1)[0]
    n = int(q.split("+")[0].split()[-1])
    if n % 3 == 0:
        return "<SUMMARY> plan </SUMMARY> <CONCLUSION> 1 </CONCLUSION>"  # rejected: tags missing
    return (
        f"<SUMMARY> add </SUMMARY> <CAPTION> {n} and 1 </CAPTION> <REASONING> {n} + 1 = {n + 1} </REASONING> "
        f"<CONCLUSION> {n + 1} </CONCLUSION>"
    )


def command(spec: str, data: str, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "slowthink.annotate.cli", "--mode", "stages", "--teacher", spec,
        "--data", data, "--map", "question=q,answer=a", "--batch-size", "2", "--out", str(out),
        "--max-retries", "0", "-M", "max_attempts=1", "--no-progress", "--json",
    ]  # fmt: skip


def comparable(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        key = (r["id"], r["mode"], r["prompt_version"])  # the teacher id holds each server's port
        assert key not in out, f"record {key} written twice"
        out[key] = (r["status"], r["steps"], r["reasons"], r["response"])
    return out


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, scripted):
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"q": f"What is {i} + 1?", "a": str(i + 1)} for i in range(N_ITEMS)]
    )
    _, _, fast = scripted(stages_reply)
    ref = run_cli(command(fast, data, tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    _, _, slow = scripted(stages_reply, delay_s=0.3)
    out = tmp_path / "killed"
    records = out / "annotations.jsonl"
    written = kill_9_after(command(slow, data, out), records, lines=4)  # two batches on disk
    assert 0 < written < N_ITEMS
    with records.open("ab") as f:  # a write torn by the kill
        f.write(b'{"id": "torn", "mode": "sta')

    resumed = run_cli(command(slow, data, out))
    assert resumed.returncode == 0, resumed.stderr
    s = json.loads(resumed.stdout)
    assert s["resumed"] == written and s["new"] + s["resumed"] == N_ITEMS
    assert comparable(records) == comparable(tmp_path / "ref" / "annotations.jsonl")
    assert s["accepted"] == json.loads(ref.stdout)["accepted"] == N_ITEMS - 4
    assert (out / "sft_llava.jsonl").read_text() == (tmp_path / "ref" / "sft_llava.jsonl").read_text()
