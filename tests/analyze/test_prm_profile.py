"""``--scorer prm:PATH`` end to end on a tiny random PRM (built offline): every step gets a score in
[0, 1]; the numbers are meaningless (random weights), so only shape and range are asserted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slowthink.cli import app
from tests.analyze.runs import MODEL_A, write_run
from tests.scorers.conftest import build_tiny_prm

pytestmark = pytest.mark.hf


def test_prm_scores_every_step(tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    prm = build_tiny_prm(tmp_path / "prm", "step_tag")
    run = write_run(tmp_path / "model-a", MODEL_A)
    out = tmp_path / "cap"
    r = CliRunner().invoke(
        app,
        [
            "analyze",
            "capabilities",
            str(run),
            "--scorer",
            f"prm:{prm}#step_tag",
            "--no-plots",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((out / "capabilities.json").read_text())
    assert data["scorer"].startswith("prm")
    every = data["runs"]["model-a"]["all"]
    assert every["steps"] == every["scored"] == 8 and 0.0 <= every["score"] <= 1.0
    calc = data["runs"]["model-a"]["capabilities"]["calculation"]
    assert calc["scored"] == 4 and 0.0 <= calc["ci95"][0] <= calc["score"] <= calc["ci95"][1] <= 1.0
