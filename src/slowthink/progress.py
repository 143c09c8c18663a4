"""The progress bars of the long loops (``slowthink eval``, ``slowthink annotate``): one rich bar per
task on stderr, with text fields of the caller's (running accuracy, accept rate, cost); silent
when disabled.

::

    with ProgressBars(True, ["acc {task.fields[acc]}"]) as bars:
        task = bars.add("majority n=4", total=20, done=5, acc="0.600 (3/5)")
        bars.advance(task, 2, acc="0.571 (4/7)")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressBars:
    """Rich progress bars: the task's label (``width`` wide), the bar, done/total, then one text
    column per template of ``fields`` (``"acc {task.fields[acc]}"``), the time elapsed and, with
    ``remaining``, the time left. ``enabled=False``: nothing is shown and every call does nothing.

    >>> with ProgressBars(False, ["acc {task.fields[acc]}"]) as bars:
    ...     bars.advance(bars.add("job", total=3, acc="-"), 1, acc="1.000 (1/1)")
    """

    def __init__(
        self,
        enabled: bool,
        fields: Sequence[str] = (),
        *,
        width: int = 22,
        remaining: bool = True,
        console: Console | None = None,
    ) -> None:
        self._p: Progress | None = None
        if enabled:
            columns: list[ProgressColumn] = [
                TextColumn(f"{{task.description:<{width}}}"),
                BarColumn(),
                MofNCompleteColumn(),
                *(TextColumn(f) for f in fields),
                TimeElapsedColumn(),
            ]
            if remaining:
                columns.append(TimeRemainingColumn())
            self._p = Progress(*columns, console=console or Console(stderr=True), transient=False)

    def __enter__(self) -> ProgressBars:
        if self._p is not None:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def add(self, label: str, total: int, done: int = 0, **fields: Any) -> TaskID | None:
        """A new bar of ``total`` steps, ``done`` of them finished already; ``fields`` fill the templates."""
        return self._p.add_task(label, total=total, completed=done, **fields) if self._p else None

    def advance(self, task: TaskID | None, k: int, **fields: Any) -> None:
        """``k`` more steps done on ``task``; ``fields`` update the templates."""
        if self._p is not None and task is not None:
            self._p.update(task, advance=k, **fields)


__all__ = ["ProgressBars"]
