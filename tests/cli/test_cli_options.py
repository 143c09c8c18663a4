"""Each option is documented once: ``slowthink eval``'s options come from the EvalConfig fields and
their docstrings, and the engine flags are one definition shared by ``eval`` and ``solve``."""

from __future__ import annotations

import dataclasses
import re

import pytest
import typer

from slowthink.cli import app, main
from slowthink.clifields import FieldOptions, field_docs, flag, help_text, with_options
from slowthink.clikit import ENGINE_FLAGS, EngineFlags
from slowthink.evaluate import EvalConfig
from slowthink.evaluate.cli import EVAL_OPTIONS


def command(name: str):
    return typer.main.get_command(app).commands[name]


def options_by_name(name: str) -> dict:
    return {p.name: p for p in command(name).params}


def help_output(capsys, monkeypatch, name: str) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no wrapping inside the help texts
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_every_evalconfig_field_has_help_and_an_option_or_is_config_only():
    fields = [f.name for f in dataclasses.fields(EvalConfig)]
    docs = field_docs(EvalConfig)
    params = options_by_name("eval")
    for name in fields:
        assert docs.get(name, "").strip(), f"EvalConfig.{name} has no docstring"
        if name in EVAL_OPTIONS.config_only:
            assert name not in params
            continue
        assert name in params, f"EvalConfig.{name} is no option of slowthink eval"
        assert params[name].help == EVAL_OPTIONS.help(name)
        assert help_text(docs[name], EVAL_OPTIONS.attrs) in params[name].help
    assert set(EVAL_OPTIONS.config_only) == {"engine_options"}


def test_eval_help_shows_each_fields_docstring(capsys, monkeypatch):
    out = help_output(capsys, monkeypatch, "eval")
    for name in EVAL_OPTIONS.names:
        assert EVAL_OPTIONS.help(name) in out, name
        assert EVAL_OPTIONS.option_names(name)[0].split("/")[0] in out
    # the docstrings' markup is gone and field references read as options
    assert "``" not in out and ":attr:" not in out
    assert "with --data too, that benchmark's loader reads --data" in out
    for extra in (
        "--force",
        "--no-retry-errors",
        "--max-attempts",
        "--no-plots",
        "--no-progress",
        "--json",
        "--config",
        "--api-key-env",
        "--timeout",
        "--max-concurrency",
        "--max-retries",
        "-E",
    ):
        assert extra in out


def test_eval_options_keep_their_names_aliases_and_defaults():
    p = options_by_name("eval")
    assert p["benchmark"].opts == ["--benchmark", "-b"] and p["strategies"].opts == ["--strategy", "-s"]
    assert p["benchmark_options"].opts == ["--benchmark-option", "-O"] and p["benchmark_options"].multiple
    assert p["strategies"].multiple and p["strategies"].default == ["majority"]
    assert p["fields"].opts == ["--map"] and p["stepwise_ns"].opts == ["--stepwise-n"]
    assert p["ns"].opts == ["--n"] and p["ns"].default == "1,2,4,8,16"
    assert p["share_samples"].secondary_opts == ["--no-share-samples"] and p["share_samples"].default is True
    assert p["ignore_images"].opts == ["--ignore-images"] and not p["ignore_images"].secondary_opts
    assert p["out"].default is None  # the command's own default: runs/<benchmark>
    defaults = {
        f.name: f.default for f in dataclasses.fields(EvalConfig) if f.default is not dataclasses.MISSING
    }
    for name in ("engine", "seeds", "seed", "batch_size", "limit", "threads", "grade_judge", "max_tokens"):
        assert p[name].default == defaults[name], name


def test_engine_flags_are_one_definition_in_eval_and_solve():
    names = [f.name for f in dataclasses.fields(EngineFlags)]
    for cmd in ("eval", "solve"):
        p = options_by_name(cmd)
        for name in names:
            assert p[name].help == ENGINE_FLAGS.help(name), (cmd, name)
        assert p["engine_option"].opts == ["--engine-option", "-E"] and p["engine_option"].multiple
        assert p["timeout"].opts == ["--timeout"]


def test_solve_shares_the_strategy_option_help_and_keeps_its_interface():
    p = options_by_name("solve")
    for name, param in (
        ("format", "fmt"),
        ("beam", "beam"),
        ("select", "select"),
        ("aggregate", "aggregate"),
        ("preset", "preset"),
        ("temperature", "temperature"),
        ("max_depth", "max_depth"),
        ("seed", "seed"),
        ("ignore_images", "ignore_images"),
    ):
        assert p[param].help == EVAL_OPTIONS.help(name), name
        assert p[param].opts == [EVAL_OPTIONS.option_names(name)[0]]
    # solve's own: one strategy (default quick), an int --n, the judge scorer by default
    assert p["strategy"].default == "quick" and not p["strategy"].multiple
    assert p["n"].opts == ["--n"] and p["n"].default is None
    assert p["fmt"].opts == ["--format"]


def test_flags_given_on_the_command_line_are_the_explicit_ones():
    seen = {}

    @with_options(EVAL_OPTIONS)
    def probe(ctx: typer.Context, **options) -> None:
        seen["given"] = EVAL_OPTIONS.given(ctx)
        seen["values"] = EVAL_OPTIONS.values(options)

    t = typer.Typer()
    t.command()(probe)
    t.command("other")(lambda: None)
    cmd = typer.main.get_command(t)
    cmd.main(
        ["probe", "-b", "gsm8k", "--n", "1,2", "-O", "size=3", "--no-share-samples"], standalone_mode=False
    )
    assert seen["given"] == {"benchmark", "ns", "benchmark_options", "share_samples"}
    v = seen["values"]
    assert v["benchmark_options"] == {"size": 3} and v["ns"] == "1,2" and v["share_samples"] is False
    assert v["strategies"] == ["majority"] and v["engine"] == "llamacpp" and "engine_options" not in v


def test_help_text_renders_roles_and_literals():
    assert help_text(
        "Reads :attr:`data` (see :mod:`~a.b.c`, :func:`x.y`);\n``None``: all.", {"data": "--data"}
    ) == ("Reads --data (see c, x.y); None: all.")
    assert help_text("Unknown :attr:`nope` stays.") == "Unknown nope stays."


@dataclasses.dataclass
class _Documented:
    size: int = 3
    """How many."""
    fast: bool = True
    """Take the quick path."""


@dataclasses.dataclass
class _Undocumented:
    size: int = 3


def test_field_options_refuse_what_would_leave_an_option_undocumented_or_defined_twice():
    with pytest.raises(TypeError, match="size.*no docstring"):
        FieldOptions(_Undocumented)
    with pytest.raises(TypeError, match="no field"):
        FieldOptions(_Documented, {"sizes": flag("-n")})
    opts = FieldOptions(_Documented)
    assert opts.option_names("fast") == ("--fast/--no-fast",) and opts.help("size") == "How many."

    def clash(size: int = 1, **options) -> None: ...

    with pytest.raises(TypeError, match="defined twice"):
        with_options(opts)(clash)

    def closed(x: int = 1) -> None: ...

    with pytest.raises(TypeError, match=re.escape("**options")):
        with_options(opts)(closed)

    def anchored(x: int = 1, **options) -> None: ...

    with pytest.raises(TypeError, match="no parameter 'y'"):
        with_options(opts, before="y")(anchored)
