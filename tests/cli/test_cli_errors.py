"""Hostile command lines: every bad input is one ``error:`` line on stderr, exit 2, no traceback.

Each case runs the real console-script entry (:func:`slowthink.cli.main`) in-process, so typer's
own usage errors (``--n abc``, unknown options, a missing argument) go through the same path a
user's shell does.
"""

from __future__ import annotations

import json
import socket

import pytest

from slowthink.cli import main
from slowthink.evaluate import EvalConfig
from slowthink.evaluate.runner import make_engine

DATA = "question=q,answer=a"


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err and "╭" not in err, err
    # rich wraps long lines to the terminal width in some consoles: the message is one logical line
    text = " ".join(lines)
    assert text.startswith("error: "), err
    assert text.count("error: ") == 1, err
    return text


@pytest.fixture
def data_file(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"q": f"What is {i} + 1?", "a": str(i + 1)}) + "\n" for i in range(3)))
    return p


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["solve", "--n", "abc", "x"], "Invalid value for '--n'"),
        (["eval", "--limit", "abc"], "Invalid value for '--limit'"),
        (["eval", "--bogus"], "No such option: --bogus"),
        (["nope"], "No such command 'nope'"),
        (["solve"], "Missing argument"),
        (["report"], "Missing argument"),
        (["eval", "-b", "gsm8k", "-E", "foo"], "write key=value"),
        (["eval", "-b", "gsm8k", "-E", "foo=1"], "engine 'llamacpp' has no option 'foo'"),
        (["eval", "-b", "gsm8k", "--timeout", "5"], "engine 'llamacpp' has no option 'timeout_s'"),
        (
            ["eval", "-b", "gsm8k", "--engine", "openai:http://127.0.0.1:9/v1#m,timout_s=3"],
            "no option 'timout_s'",
        ),
        (["eval", "-b", "gsm8k", "--max-attempts", "0"], "--max-attempts must be >= 1"),
        (["eval", "-b", "gsm8k", "--max-tokens", "0"], "--max-tokens must be a whole number >= 1"),
        (["solve", "--max-depth", "0", "x"], "max_depth must be >= 1"),
        (
            [
                "solve",
                "--engine",
                "openai",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "-E",
                "timeout_s=abc",
                "x",
            ],
            "could not convert string to float",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, needle, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert needle in one_error_line(err)


def test_help_still_works(capsys):
    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0 and "--api-key-env" in out and "--no-retry-errors" in out


def test_out_is_a_file(tmp_path, data_file, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    code, _, err = run_cli(["eval", "--data", data_file, "--map", DATA, "--out", target], capsys)
    assert code == 2 and "is a file, not a run folder" in one_error_line(err)
    code, _, err = run_cli(["eval", "--data", data_file, "--map", DATA, "--out", target / "sub"], capsys)
    assert code == 2 and "cannot create the run folder" in one_error_line(err)


def test_records_file_is_a_folder(tmp_path, data_file, capsys):
    (tmp_path / "run" / "records.jsonl").mkdir(parents=True)
    code, _, err = run_cli(["eval", "--data", data_file, "--map", DATA, "--out", tmp_path / "run"], capsys)
    assert code == 2 and "records.jsonl is a folder" in one_error_line(err)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.jsonl", b"", "is empty"),
        ("blank.jsonl", b"\n  \n", "is empty"),
        ("binary.jsonl", bytes(range(256)) * 8, "is not UTF-8 text"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 40, "is not UTF-8 text"),
        ("prose.jsonl", b"this is\nnot json\n", "is not JSONL"),
    ],
)
def test_bad_data_files_say_what_is_wrong(tmp_path, capsys, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content)
    code, _, err = run_cli(["eval", "--data", p, "--map", DATA, "--out", tmp_path / "run"], capsys)
    line = one_error_line(err)
    assert code == 2 and needle in line and "available fields" not in line


def test_recipe_that_is_not_text(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_bytes(b"\xff\xfe\x00\x01" * 10)
    code, _, err = run_cli(["eval", "--config", p], capsys)
    assert code == 2 and "is not UTF-8 text" in one_error_line(err)


def test_unreachable_server_stops_the_eval_with_one_line(tmp_path, data_file, capsys):
    out = tmp_path / "run"
    args = [
        "eval",
        "--data",
        data_file,
        "--map",
        DATA,
        "--engine",
        f"openai:{dead_url()}#m",
        "--strategy",
        "quick",
        "--max-retries",
        "0",
        "--timeout",
        "5",
        "--out",
        out,
        "--no-progress",
    ]
    code, _, err = run_cli(args, capsys)
    line = one_error_line(err)
    assert code == 2 and "every problem of the first batch failed (3 of 3" in line and "server" in line
    assert not (out / "records.jsonl").exists() or (out / "records.jsonl").read_text() == ""


def test_engine_options_reach_the_engine_from_flags_spec_and_yaml(tmp_path, data_file):
    url = dead_url()
    cfg = EvalConfig(
        data=str(data_file),
        fields=DATA,
        engine=f"openai:{url}#m,max_retries=1",
        engine_options={"timeout_s": 7, "max_concurrency": 3, "api_key_env": "HOME"},
        out=str(tmp_path / "run"),
    )
    engine = make_engine(cfg)
    o = engine.options
    assert (o.timeout_s, o.max_concurrency, o.max_retries, o.api_key_env) == (7, 3, 1, "HOME")
    # the options are not the run's identity: the model and its answers are the same
    same = EvalConfig(data=str(data_file), fields=DATA, engine=f"openai:{url}#m", out=str(tmp_path / "run"))
    assert cfg.identity() == same.identity()
    # a clash between the spec and a flag is an error, not a silent pick
    from slowthink.types import SlowthinkError

    with pytest.raises(SlowthinkError, match="given twice"):
        EvalConfig(
            data=str(data_file),
            fields=DATA,
            engine=f"openai:{url}#m,max_retries=1",
            engine_options={"max_retries": 2},
        )


def test_yaml_engine_options_merge_with_flags(tmp_path, data_file, capsys, monkeypatch):
    import slowthink.evaluate.cli as eval_cli

    seen = {}

    def fake_run_eval(config, **kw):
        seen.update(config.engine_options)
        raise eval_cli.SlowthinkError("stop here")

    monkeypatch.setattr(eval_cli, "run_eval", fake_run_eval)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"data: {data_file}\nfields: {DATA}\nengine: openai:{dead_url()}#m\n"
        "engine_options: {timeout_s: 9, max_retries: 1}\n"
    )
    code, _, err = run_cli(
        ["eval", "--config", recipe, "--max-retries", "3", "--api-key-env", "HOME"], capsys
    )
    assert code == 2 and "stop here" in err
    assert seen == {"timeout_s": 9, "max_retries": 3, "api_key_env": "HOME"}
