"""``slowthink eval`` end to end on the real embedded model: 3 GSM8K problems, majority at N=1,2."""

from __future__ import annotations

import json

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.evaluate import EvalConfig, run_eval

pytestmark = pytest.mark.model


def test_gsm8k_majority_scaling_on_smollm(smol_engine, shared_data, tmp_path):
    cfg = EvalConfig(
        benchmark="gsm8k",
        data=str(shared_data / "gsm8k" / "test.jsonl"),
        limit=3,
        strategies=["majority"],
        ns=[1, 2],
        seeds=3,
        max_tokens=96,
        batch_size=3,
        seed=1234,
        out=str(tmp_path / "run"),
    )
    eng = RecordingEngine(smol_engine)
    r = run_eval(cfg, engine=eng, progress=False)
    assert r.new_records == 3 and r.errors == 0
    assert eng.n_calls == 1 and eng.calls[0].n_requests == 3  # one batch, one engine call

    recs = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert [x["id"] for x in recs] == ["gsm8k-test-0", "gsm8k-test-1", "gsm8k-test-2"]
    for x in recs:
        samples = [n for n in x["trace"]["nodes"] if n["parent"] == 0]
        assert len(samples) == 2 and all(n["generated_tokens"] > 0 for n in samples)
        assert x["compute"]["generated_tokens"] == sum(n["generated_tokens"] for n in samples)
        assert x["grade"]["gold_norm"] is not None  # the GSM8K gold was normalised

    n1, n2 = r.rows
    assert (n1["n"], n1["derived_from"], n2["n"], n2["derived_from"]) == (1, 2, 2, None)
    assert n2["accuracy"] == round(sum(x["grade"]["correct"] for x in recs) / 3, 4)
    # a derived N=1 costs the tokens of one sample: between the shorter and longer sample per problem
    lo = sum(min(n["generated_tokens"] for n in x["trace"]["nodes"] if n["parent"] == 0) for x in recs) / 3
    hi = sum(max(n["generated_tokens"] for n in x["trace"]["nodes"] if n["parent"] == 0) for x in recs) / 3
    assert lo - 0.01 <= n1["policy_generated_tokens"] <= hi + 0.01
    assert n2["policy_generated_tokens"] == pytest.approx(lo + hi, abs=0.01)
    for row in r.rows:
        assert row["ci95"][0] <= row["accuracy"] <= row["ci95"][1] and row["problems"] == 3
    run_dir = tmp_path / "run"
    assert (run_dir / "report.html").stat().st_size > 0 and (run_dir / "accuracy_vs_n.png").stat().st_size > 0

    again = RecordingEngine(smol_engine)
    r2 = run_eval(cfg, engine=again, progress=False)
    assert again.n_calls == 0 and r2.new_records == 0 and r2.resumed_records == 3
    assert r2.rows == r.rows  # metrics come from the records alone
