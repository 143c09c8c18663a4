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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slowthink.jsonl import RecordWriter, write_json  # the run folder's writer, shared with annotate/
from slowthink.types import SlowthinkError

RECORDS = "records.jsonl"
CONFIG = "config.json"
METRICS = "metrics.json"
REPORT = "report.html"
VIEW = "view.html"
RECORD_VERSION = 1

RecordKey = tuple[str, str, str]

__all__ = [
    "CONFIG",
    "METRICS",
    "RECORDS",
    "RECORD_VERSION",
    "REPORT",
    "RecordWriter",
    "iter_records",
    "read_json",
    "read_records",
    "record_key",
    "write_json",
]


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


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlowthinkError(f"{what} not found: {path}") from None
    except ValueError as e:
        raise SlowthinkError(f"{what} {path} is not valid JSON ({e}); delete it or use a new --out") from None
