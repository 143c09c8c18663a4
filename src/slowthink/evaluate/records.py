"""The run folder on disk: ``records.jsonl`` (one record per finished problem and job) and
``config.json``.

A record (one JSON line)::

    {"v": 1, "id": "gsm8k-test-0", "strategy": "majority", "key": "n=16", "n": 16,
     "problem": {...Problem.to_dict()...}, "trace": {...Trace.to_dict()...},
     "answer": "18", "grade": {"correct": true, "method": "numeric", "pred_norm": "18", "gold_norm": "18"},
     "compute": {...Compute...}, "error": null, "time": "2025-01-01T12:00:00+00:00"}

``(id, strategy, key)`` identifies a record; when a key occurs twice (a retried error) the last
line wins. Records are appended a batch at a time, flushed and ``fsync`` ed, so a killed run loses
at most the batch in flight; a line cut short by a kill is dropped when the file is read back and
trimmed before the next append.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from slowthink.types import SlowthinkError

RECORDS = "records.jsonl"
CONFIG = "config.json"
METRICS = "metrics.json"
REPORT = "report.html"
VIEW = "view.html"
RECORD_VERSION = 1

RecordKey = tuple[str, str, str]


def record_key(rec: dict[str, Any]) -> RecordKey:
    return (str(rec["id"]), str(rec["strategy"]), str(rec["key"]))


def read_records(path: Path) -> tuple[dict[RecordKey, dict[str, Any]], int]:
    """Records by key (the last line of a key wins) and how many lines were unreadable."""
    out: dict[RecordKey, dict[str, Any]] = {}
    bad = 0
    if not path.is_file():
        return out, 0
    with path.open("rb") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                out[record_key(rec)] = rec
            except (ValueError, KeyError, TypeError):
                bad += 1
    return out, bad


def iter_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    yield from read_records(Path(run_dir) / RECORDS)[0].values()


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


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlowthinkError(f"{what} not found: {path}") from None
    except ValueError as e:
        raise SlowthinkError(f"{what} {path} is not valid JSON ({e}); delete it or use a new --out") from None
