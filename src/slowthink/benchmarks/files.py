"""Finding benchmark files and reading records from JSON, JSONL, CSV/TSV and parquet.

Readers yield ``(key, record)`` pairs where ``record`` is a dict, or a :class:`SkipRow` for a row
that cannot be read (a bad JSON line, a CSV row with too many cells); the loader counts those.
A file that cannot be read at all raises :class:`~slowthink.types.SlowthinkError`.

Default data folder (used when ``load_benchmark`` gets no path): ``$SLOWTHINK_DATA`` when set,
else ``../shared/data`` next to the repository checkout when that folder exists.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from slowthink.benchmarks.base import BAD_CSV_ROW, BAD_JSON_LINE, NOT_AN_OBJECT, SkipRow
from slowthink.types import SlowthinkError

DATA_ENV = "SLOWTHINK_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[3]

Record = tuple[str | None, "dict[str, Any] | SkipRow"]

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet")
_SUFFIX_FORMAT = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def default_data_dir() -> Path | None:
    """``$SLOWTHINK_DATA``, else ``<repo>/../shared/data`` if it is a folder, else None."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    shared = _REPO_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def resolve_path(name: str, path: str | Path | None, candidates: Sequence[str]) -> Path:
    """The data file to read.

    ``path`` may be a file, or a folder holding one of ``candidates`` (paths relative to the data
    folder, e.g. ``"math-v/testmini.jsonl"``; their base names are tried too). Without ``path``
    the candidates are looked up in :func:`default_data_dir`.
    """
    if path is None:
        root = default_data_dir()
        if root is None:
            raise SlowthinkError(
                f"{name}: no path given and no data folder found: pass a path, or set {DATA_ENV} "
                f"to the folder holding {candidates[0] if candidates else 'the data'}"
            )
        found = _first_existing(root, candidates)
        if found is None:
            raise SlowthinkError(
                f"{name}: no path given and {root / candidates[0]} does not exist: pass the data file's "
                f"path, or set {DATA_ENV} to a folder holding {candidates[0]}"
            )
        return found
    p = Path(path).expanduser()
    if p.is_dir():
        found = _first_existing(p, candidates)
        if found is None:
            wanted = ", ".join(dict.fromkeys(Path(c).name for c in candidates)) or "a data file"
            raise SlowthinkError(f"{name}: folder {p} holds none of: {wanted}; pass the data file's path")
        return found
    if not p.is_file():
        raise SlowthinkError(f"{name}: data file {p} does not exist")
    return p


def _first_existing(root: Path, candidates: Sequence[str]) -> Path | None:
    for c in candidates:
        for q in (root / c, root / Path(c).name):
            if q.is_file():
                return q
    return None


def detect_format(path: Path, fmt: str | None = None) -> str:
    """``fmt`` if given (checked), else from the suffix: jsonl, json, csv, tsv or parquet."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise SlowthinkError(f"unknown data format '{fmt}': choose one of {', '.join(FORMATS)}")
        return fmt
    try:
        return _SUFFIX_FORMAT[path.suffix.lower()]
    except KeyError:
        raise SlowthinkError(
            f"cannot tell the format of {path} from its suffix: pass format= one of {', '.join(FORMATS)}"
        ) from None


def read_records(path: Path, fmt: str) -> Iterator[Record]:
    """Records of ``path`` in file order, as ``(key, record_or_SkipRow)``."""
    if fmt == "jsonl":
        return iter_jsonl(path)
    if fmt == "json":
        return iter_json(path)
    if fmt in ("csv", "tsv"):
        return iter_csv(path, delimiter="\t" if fmt == "tsv" else ",")
    if fmt == "parquet":
        return iter_parquet(path)
    raise SlowthinkError(f"unknown data format '{fmt}': choose one of {', '.join(FORMATS)}")


_SNIFF_BYTES = 64 * 1024


def check_text_file(path: Path, what: str = "a JSONL, JSON, CSV or TSV file") -> None:
    """One clear error for a data file that is a folder, empty (or blank), or not UTF-8 text
    (a binary file), before any parsing says something misleading about missing fields.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_bytes(b"")
    >>> check_text_file(p)
    Traceback (most recent call last):
    ...
    slowthink.types.SlowthinkError: .../x.jsonl is empty: point --data at a JSONL, JSON, CSV or TSV file with records
    """
    try:
        if path.is_dir():
            raise SlowthinkError(f"{path} is a folder, not a data file: name the file inside it")
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise SlowthinkError(f"cannot read {path}: {e.strerror or e}") from None
    if not head.strip():
        raise SlowthinkError(f"{path} is empty: point --data at {what} with records")
    # binary: NUL bytes, or mostly bytes that are not UTF-8 (one bad line among good ones is a
    # skipped record, not a binary file)
    decoded = head.decode("utf-8", errors="replace")
    text_like = b"\x00" not in head and decoded.count("\ufffd") <= max(3, len(decoded) // 10)
    if not text_like:
        raise SlowthinkError(
            f"{path} is not UTF-8 text (it looks binary): pass {what}, or a parquet file with a .parquet suffix"
        )


def iter_jsonl(path: Path) -> Iterator[Record]:
    """One record a non-blank line; a line that is not a JSON object yields a :class:`SkipRow`.

    The key is the 0-based index of the line among non-blank lines (bad lines included). A file
    with no JSON line at all is an error (it is not JSONL), not a run over zero problems.
    """
    check_text_file(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise SlowthinkError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        i = good = 0
        for raw in f:
            if not raw.strip():
                continue
            key = str(i)
            i += 1
            try:
                obj = json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                yield key, SkipRow(BAD_JSON_LINE)
                continue
            good += 1
            yield key, obj if isinstance(obj, dict) else SkipRow(NOT_AN_OBJECT)
    if i and not good:
        raise SlowthinkError(
            f"{path} is not JSONL: none of its {i} non-blank line(s) is JSON (one record per line); "
            "for a JSON list or CSV use the .json / .csv suffix"
        )


def load_json(path: Path) -> Any:
    """Parse a whole JSON file; a broken file is one clear error naming line and column."""
    check_text_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise SlowthinkError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SlowthinkError(f"{path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SlowthinkError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None


def json_records(obj: Any, path: Path) -> Iterator[Record]:
    """Records of a parsed JSON document.

    A list of objects; a dict of objects keyed by id (MathVista); or a dict with one list of
    objects under ``data``/``examples``/``problems``/``rows``/``records``/``test``.
    """
    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            yield str(i), rec if isinstance(rec, dict) else SkipRow(NOT_AN_OBJECT)
        return
    if isinstance(obj, dict):
        for k in ("data", "examples", "problems", "rows", "records", "test", "instances"):
            if isinstance(obj.get(k), list):
                yield from json_records(obj[k], path)
                return
        if obj and all(isinstance(v, dict) for v in obj.values()):
            for k, rec in obj.items():
                yield str(k), rec
            return
        if obj and sum(isinstance(v, dict) for v in obj.values()) > len(obj) // 2:
            for k, rec in obj.items():
                yield str(k), rec if isinstance(rec, dict) else SkipRow(NOT_AN_OBJECT)
            return
    raise SlowthinkError(
        f"{path}: expected a JSON list of records or an object of records keyed by id, got {type(obj).__name__}"
    )


def iter_json(path: Path) -> Iterator[Record]:
    return json_records(load_json(path), path)


def _raise_csv_field_limit() -> None:
    limit = sys.maxsize
    while True:  # base64 image cells exceed the default 128 KiB; maxsize overflows a C long on Windows
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def iter_csv(path: Path, delimiter: str = ",") -> Iterator[Record]:
    """One record a row (header row gives the field names); empty cells read as None."""
    check_text_file(path)
    _raise_csv_field_limit()
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise SlowthinkError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            for i, row in enumerate(reader):
                if None in row:  # more cells than header names
                    yield str(i), SkipRow(BAD_CSV_ROW)
                    continue
                yield str(i), {k: (v if v != "" else None) for k, v in row.items()}
        except csv.Error as e:
            raise SlowthinkError(f"{path}: unreadable CSV at line {reader.line_num}: {e}") from None
        except UnicodeDecodeError:
            raise SlowthinkError(f"{path} is not UTF-8 text") from None


def iter_parquet(path: Path) -> Iterator[Record]:
    """Rows of a parquet file through pyarrow (or pandas); an install hint when neither is there."""
    rows: list[dict[str, Any]]
    try:
        try:
            import pyarrow.parquet as pq  # type: ignore[import-not-found]

            rows = pq.read_table(path).to_pylist()
        except ImportError:
            try:
                import pandas as pd  # type: ignore[import-not-found]
            except ImportError:
                raise SlowthinkError(
                    f"reading parquet ({path}) needs pyarrow: pip install pyarrow (or convert the file to JSONL)"
                ) from None
            rows = pd.read_parquet(path).to_dict("records")
    except SlowthinkError:
        raise
    except Exception as e:  # pyarrow.ArrowInvalid, OSError, pandas engine errors: an unreadable file
        raise SlowthinkError(
            f"cannot read parquet file {path}: {str(e).splitlines()[0] if str(e) else e!r}"
        ) from None
    for i, row in enumerate(rows):
        yield str(i), {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in row.items()}
