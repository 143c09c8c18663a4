"""The viewer's input: a run folder (its ``records.jsonl``) or a JSON file of traces.

A run folder's ``records.jsonl`` holds one record a line (``{"id", "strategy", "key", "problem",
"trace", "grade", ...}``, see the run folder layout in docs/ARCHITECTURE.md); when a record key
``(id, strategy, key)`` occurs twice the last line wins, and a line cut short by a kill is skipped,
as the evaluation's own reader does. A JSON file holds one trace (``slowthink solve --json``), a
list of traces, or records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from slowthink.inspect.tree import problem_view
from slowthink.types import SlowthinkError, Trace

RECORDS = "records.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a run's ``records.jsonl``: the last line of a record key wins; unreadable lines are skipped."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    with path.open("rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
                out[(str(rec["id"]), str(rec["strategy"]), str(rec["key"]))] = rec
            except (ValueError, KeyError, TypeError):
                continue
    return list(out.values())


def record_views(items: Iterable[Mapping[str, Any]], source: Path) -> list[dict[str, Any]]:
    """Viewer data of records (``{"trace": ...}``) or bare trace dicts; a record without a trace
    (its problem failed) is listed with its error and no tree."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise SlowthinkError(f"{source}: expected trace or record objects, found {type(item).__name__}")
        rec = item if "trace" in item else {"trace": item}
        try:
            trace = (
                Trace.from_dict(rec["trace"])
                if rec["trace"]
                # a problem that failed before any trace was made: listed with its error
                else Trace(
                    str(rec.get("id")), str(rec.get("strategy", "")), "", error=rec.get("error") or "no trace"
                )
            )
        except TypeError as e:
            raise SlowthinkError(
                f"{source}: not a slowthink trace ({e}); pass a run folder or the output of slowthink solve --json"
            ) from None
        out.append(problem_view(trace, rec.get("problem"), rec.get("grade"), str(rec.get("key", ""))))
    return out


def load_views(source: Path, problem: str | None = None) -> list[dict[str, Any]]:
    """Viewer data of every trace in ``source`` (a run folder or a JSON file), or of one problem's."""
    source = Path(source)
    if source.is_dir():
        path = source / RECORDS
        if not path.is_file():
            raise SlowthinkError(f"no {RECORDS} in {source}: pass a folder made by slowthink eval --out")
        views = record_views(read_jsonl(path), path)
    elif source.is_file():
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except ValueError as e:
            raise SlowthinkError(
                f"{source} is not valid JSON ({e}); pass a trace file or a run folder"
            ) from None
        views = record_views(data if isinstance(data, list) else [data], source)
    else:
        raise SlowthinkError(f"not found: {source} (pass a run folder or a trace .json file)")
    if problem is not None:
        views = [v for v in views if str(v["id"]) == problem]
        if not views:
            raise SlowthinkError(
                f"problem '{problem}' is not in {source}; leave out --problem to see the list"
            )
    if not views:
        raise SlowthinkError(f"{source} holds no trace to show")
    return views
