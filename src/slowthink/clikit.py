"""What every ``slowthink`` command shares: one error line, usage errors as one line, engine flags
(:class:`EngineFlags`, options built by :mod:`slowthink.clifields`).

Every failure a user can cause prints one line ``error: <what happened>; <the fix>`` on stderr and
exits 2 (usage and input errors) without a traceback. :func:`run_app` runs a typer app so that
click's usage errors (``--n abc``, an unknown option, a missing argument) print the same one line
instead of typer's boxed panel.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from slowthink.clifields import FieldOptions, flag
from slowthink.options import parse_kv
from slowthink.types import SlowthinkError

try:  # typer >= 0.20 vendors click as typer._click; older typer raises click's own classes
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover - depends on the typer version
    from click import exceptions as cx

_err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr (one line, no markup interpretation) and exit ``code``."""
    _err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def usage_line(e: Any) -> str:
    """One line for a click usage error: the message and where to read the usage."""
    ctx = getattr(e, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return " ".join(str(e.format_message()).split()) + where


def run_app(app: typer.Typer, args: Sequence[str] | None = None, prog_name: str | None = None) -> int:
    """Run ``app`` like ``app()`` but with one-line usage errors; returns the exit code.

    ``--help`` and a bare command (help shown) behave as usual.
    """
    command = typer.main.get_command(app)
    try:
        rv = command.main(
            args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False
        )
    except cx.NoArgsIsHelpError as e:  # a bare group/command: show its help
        sys.stderr.write((e.ctx.get_help() if e.ctx is not None else str(e)) + "\n")
        return 2
    except cx.UsageError as e:
        _err.print(f"[bold red]error:[/bold red] {escape(usage_line(e))}", highlight=False, soft_wrap=True)
        return 2
    except cx.ClickException as e:
        _err.print(
            f"[bold red]error:[/bold red] {escape(' '.join(e.format_message().split()))}",
            highlight=False,
            soft_wrap=True,
        )
        return e.exit_code
    except typer.Abort:
        _err.print("aborted", highlight=False)
        return 130
    except KeyboardInterrupt:
        _err.print("interrupted", highlight=False)
        return 130
    return rv if isinstance(rv, int) else 0


@dataclass
class EngineFlags:
    """The engine options every command that loads an engine takes as flags (``ENGINE_FLAGS``)."""

    api_key_env: str | None = None
    """Name of the environment variable holding the API key (openai engine)."""
    timeout: float | None = None
    """Seconds one HTTP request may take (openai engine's ``timeout_s``)."""
    max_concurrency: int | None = None
    """HTTP requests in flight at once (openai engine)."""
    max_retries: int | None = None
    """Retries of a failed HTTP request (openai engine)."""
    engine_option: list[str] | None = None
    """Engine options ``key=value``: ``timeout_s=30``, ``backoff_max_s=5``, ``n_ctx=8192``, ...; also
    as ``,key=value`` after the engine spec (and ``engine_options`` in an eval recipe)."""

    def options(self) -> dict[str, Any]:
        """Engine options from the named flags and the ``key=value`` items.

        >>> EngineFlags(timeout=30, engine_option=["max_retries=2", "prefix_mode=completions"]).options()
        {'max_retries': 2, 'prefix_mode': 'completions', 'timeout_s': 30}
        """
        out: dict[str, Any] = {}
        for item in self.engine_option or []:
            for key, value in parse_kv(item, what="--engine-option").items():
                if key in out:
                    raise SlowthinkError(f"--engine-option '{key}' given twice; keep one")
                out[key] = value
        named = {
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout,
            "max_concurrency": self.max_concurrency,
            "max_retries": self.max_retries,
        }
        for key, value in named.items():
            if value is None:
                continue
            if key in out and out[key] != value:
                raise SlowthinkError(
                    f"engine option '{key}' given twice (a flag and --engine-option); keep one"
                )
            out[key] = value
        return out


#: The engine flags as options of a command: ``@with_options(ENGINE_FLAGS)``, then
#: ``ENGINE_FLAGS.build(options).options()``.
ENGINE_FLAGS = FieldOptions(
    EngineFlags, {"engine_option": flag("--engine-option", "-E", note="Repeatable: -E key=value.")}
)


def main_entry(app: typer.Typer) -> NoReturn:
    """``sys.exit(run_app(app))``: the console-script entry of a typer app."""
    sys.exit(run_app(app))


def read_recipe(path: str, config: type, explicit: set[str], what: str) -> dict[str, Any]:
    """Fields of the dataclass ``config`` from a YAML recipe, less those given as flags
    (``explicit``: flags win); one error line for an unreadable, non-YAML or non-mapping file and for
    unknown keys. ``what`` names the settings in messages (``EvalConfig fields``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as e:
        raise SlowthinkError(
            f"recipe {path} cannot be read ({e.strerror}); check the --config path"
        ) from None
    except UnicodeDecodeError:
        raise SlowthinkError(f"recipe {path} is not UTF-8 text: pass a YAML file") from None
    except yaml.YAMLError as e:
        raise SlowthinkError(f"recipe {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SlowthinkError(f"recipe {path} must be a mapping of {what}, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SlowthinkError(
            f"recipe {path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
        )
    return {k: v for k, v in data.items() if k not in explicit}


__all__ = ["read_recipe", "ENGINE_FLAGS", "EngineFlags", "fail", "main_entry", "run_app", "usage_line"]
