"""Append-only JSONL files and atomic JSON files, shared by every long run (``evaluate/`` run
folders, ``annotate/`` data folders).

A long run appends one JSON line per finished item with :class:`RecordWriter` (one write, flush,
``fsync`` per batch), so a killed run leaves whole lines or a cut last line; the cut line is
trimmed (:func:`trim_partial_line`) before the next append and skipped by :func:`iter_jsonl`.
Small files that are rewritten as a whole (configs, metrics, summaries) go through
:func:`write_json` (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """``(line number, object)`` for every non-blank line of ``path`` (1-based); ``None`` for a line
    that is not a JSON object (a torn last line, a hand edit). Nothing when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            yield number, obj if isinstance(obj, dict) else None


def trim_partial_line(path: Path) -> bool:
    """Cut a last line without its newline (a write interrupted by a kill). Returns True if cut."""
    if not path.is_file():
        return False
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # walk back to the previous newline
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            i = buf.rfind(b"\n")
            if i >= 0:
                f.truncate(start + i + 1)
                return True
            pos = start
        f.truncate(0)
        return True


class RecordWriter:
    """Appends records a batch at a time: one write, flush, ``os.fsync``. The file is opened (and a
    line cut by a kill trimmed) at the first write, so a run stopped before its first record leaves
    no records file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._f: BinaryIO | None = None

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append the batch in one write (a kill leaves whole lines or a cut last line), then fsync."""
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            trim_partial_line(self.path)
            self._f = self.path.open("ab")
        data = "".join(json.dumps(rec, ensure_ascii=False, default=str) + "\n" for rec in records)
        self._f.write(data.encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
