"""``slowthink train``: the commands end to end, one-line errors, resume after ``kill -9``, and
the GGUF round trip of a trained tiny Llama through llama.cpp."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slowthink.cli import main
from tests.train.conftest import CONVERSATION, STEPWISE, write_jsonl

pytestmark = pytest.mark.hf
pytest.importorskip("torch")
pytest.importorskip("trl")

SRC = Path(__file__).resolve().parents[2] / "src"
FAST = ["--lr", "0.01", "--device", "cpu"]


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(["train", *args])
    return int(e.value.code or 0)


def test_sft_and_prm_commands_write_models_summaries_and_curves(tiny_llama_dir, data_dir, tmp_path, capsys):
    sft_data = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION])
    out = tmp_path / "sft"
    assert (
        run_cli(
            [
                "sft",
                "--data",
                str(sft_data),
                "--model",
                str(tiny_llama_dir),
                "--out",
                str(out),
                "--max-steps",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["examples"] == 1 and summary["kind"] == "sft"
    assert summary["recipe"]["learning_rate"] == 0.01 and (out / "loss.png").is_file()
    assert "sft" in capsys.readouterr().err
    prm_data = write_jsonl(data_dir / "prm.jsonl", STEPWISE)
    out = tmp_path / "prm"
    assert (
        run_cli(
            [
                "prm",
                "--data",
                str(prm_data),
                "--model",
                str(tiny_llama_dir),
                "--out",
                str(out),
                "--protocol",
                "token_cls",
                "--max-steps",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    assert f"--scorer prm:{out}" in capsys.readouterr().err
    assert json.loads((out / "slowthink_prm.json").read_text())["config"]["protocol"] == "token_cls"


@pytest.mark.parametrize(
    ("command", "records", "needle"),
    [
        ("sft", STEPWISE, "not a 'sft' training record"),
        ("prm", [CONVERSATION], "not a 'prm' training record"),
        ("prm", [{**STEPWISE[0], "labels": None}], "'labels' must be a list"),
        ("sft", [{**CONVERSATION, "image": "nope.png"}], "image not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tiny_llama_dir, data_dir, tmp_path, capsys, command, records, needle
):
    data = write_jsonl(data_dir / "bad.jsonl", records)
    code = run_cli(
        [command, "--data", str(data), "--model", str(tiny_llama_dir), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and needle in err and len(err.splitlines()) == 1


def test_untrainable_model_is_one_line_and_exit_2(data_dir, tmp_path, capsys):
    bad = tmp_path / "weights.gguf"
    bad.write_bytes(b"GGUF but not really")
    data = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION])
    assert run_cli(["sft", "--data", str(data), "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot train" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_llama_dir, data_dir, tmp_path):
    from slowthink.train.recipe import Recipe
    from slowthink.train.sft import train_sft

    data = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION])
    out = tmp_path / "run"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("save_steps: 2\nsave_total_limit: 3\nlogging_steps: 1\nlr_scheduler: constant\n")
    cmd = [
        sys.executable,
        "-m",
        "slowthink.train",
        "sft",
        "--data",
        str(data),
        "--model",
        str(tiny_llama_dir),
        "--out",
        str(out),
        "--config",
        str(recipe),
        "--max-steps",
        "100000",
        *FAST,
    ]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    log = tmp_path / "train.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120

        def saved() -> list[int]:  # complete checkpoints (older ones rotate away: save_total_limit)
            return [
                int(p.name.split("-")[1])
                for p in out.glob("checkpoint-*")
                if (p / "trainer_state.json").is_file()
            ]

        while not any(step >= 4 for step in saved()):
            tail = log.read_text(errors="replace")[-2000:]
            assert proc.poll() is None and time.monotonic() < deadline, f"no checkpoint written:\n{tail}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(
        int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file()
    )
    last = done[-1]
    result = train_sft(
        data,
        str(tiny_llama_dir),
        out,
        Recipe.load(recipe, max_steps=last + 2, learning_rate=0.01, device="cpu"),
    )
    assert result.resumed_from == str(out / f"checkpoint-{last}")
    assert result.steps == last + 2


def test_exported_gguf_runs_on_llamacpp_with_the_trained_weights(tiny_llama_dir, data_dir, tmp_path, capsys):
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION])
    trained = tmp_path / "sft"
    assert (
        run_cli(
            [
                "sft",
                "--data",
                str(data),
                "--model",
                str(tiny_llama_dir),
                "--out",
                str(trained),
                "--max-steps",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    gguf = tmp_path / "policy.gguf"
    assert run_cli(["export", "--model", str(trained), "--out", str(gguf), "--dtype", "f32"]) == 0
    assert f"--model {gguf}" in capsys.readouterr().err
    tok = AutoTokenizer.from_pretrained(trained)
    text = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n<SUMMARY> I will"
    ids = tok.encode(text, add_special_tokens=False)
    llm = llama_cpp.Llama(str(gguf), n_ctx=128, n_threads=1, logits_all=True, verbose=False)
    try:
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids  # the same tokenizer
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)])
    finally:
        llm.close()
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(trained)(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(got - want).max() < 1e-3  # the same weights, in llama.cpp's layout


def test_export_refuses_other_architectures(tiny_qwen2vl_dir, tmp_path, capsys):
    assert run_cli(["export", "--model", str(tiny_qwen2vl_dir), "--out", str(tmp_path / "x.gguf")]) == 2
    assert "supports Llama causal LMs" in capsys.readouterr().err


@pytest.mark.model
@pytest.mark.slow
def test_embedded_smollm2_gguf_to_transformers_and_back(tmp_path):
    """The embedded SmolLM2 GGUF -> the transformers folder training starts from -> GGUF again
    (tokenizer copied from the source GGUF): llama.cpp agrees with transformers on the folder."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slowthink.train.export import export_gguf
    from slowthink.train.run import model_folder

    folder, source = model_folder(None)
    assert source is not None and source.suffix == ".gguf"
    out = export_gguf(folder, tmp_path / "smol.gguf", dtype="f16", like=source)
    tok = AutoTokenizer.from_pretrained(folder)
    text = "<|im_start|>user\nWhat is 3 + 4 + 5?<|im_end|>\n<|im_start|>assistant\nStep 1: 3 + 4 = 7."
    ids = tok.encode(text, add_special_tokens=False)
    llm = llama_cpp.Llama(str(out), n_ctx=256, n_threads=1, logits_all=True, verbose=False)
    try:
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)])
    finally:
        llm.close()
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(folder)(torch.tensor([ids])).logits[0].numpy()
    assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.9  # f16 weights: the same next tokens
    assert np.abs(got - want).max() < 0.5
