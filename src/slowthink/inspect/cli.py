"""``slowthink view``: write the search-tree viewer page of a run folder or a trace file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slowthink.clikit import fail
from slowthink.inspect.load import load_views
from slowthink.inspect.page import write_page
from slowthink.types import SlowthinkError


def view_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A run folder made by slowthink eval --out, or a trace .json (slowthink solve --json)."
        ),
    ],
    problem: Annotated[
        str | None, typer.Option(help="Show only this problem id (all its strategies and N).")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("view.html"),
) -> None:
    """Write one self-contained HTML page showing the search tree of each problem: every node with
    its text, scores, rejection reason and judge decisions, the chosen path highlighted, compute."""
    try:
        views = load_views(source, problem)
        path = write_page(views, out, title=f"slowthink view · {source.name}")
    except SlowthinkError as e:
        fail(str(e))
    typer.echo(f"wrote {path} ({len(views)} trace{'s' if len(views) != 1 else ''})")
