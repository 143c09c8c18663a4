"""Turning a record's image field into checked file paths.

An image value may be a path relative to an image root, a list of paths, a base64 string (a
VLMEvalKit TSV cell, a ``data:image/...;base64,`` URL), raw bytes, or a Hugging Face
``{"bytes": ..., "path": ...}`` dict. Encoded images are written once to a cache folder, named by
content hash, so a second load reuses them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from slowthink.benchmarks.base import BAD_IMAGE_DATA, IMAGE_MISSING, IMAGE_UNREADABLE, SkipRow
from slowthink.images import image_format
from slowthink.types import SlowthinkError

_B64_RE = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
_MAX_PATH_LEN = 1024


def readable(path: Path) -> bool:
    """True when PIL can open ``path`` and read its header."""
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - reading the header is the check
    except Exception:
        return False
    return True


def looks_like_base64(value: str) -> bool:
    """True for a data URL, or a string of 32+ characters all in the base64 alphabet.

    >>> looks_like_base64("data:image/png;base64,iVBO"), looks_like_base64("images/1.jpg")
    (True, False)
    """
    if value.startswith("data:image"):
        return True
    return len(value) >= 32 and _B64_RE.match(value) is not None


class ImageResolver:
    """Resolve, check and (for encoded images) write the images of one load.

    Args:
        root: folder that relative image paths are resolved against.
        cache_dir: where decoded images are written; a new temp folder when None.
        verify: open each image's header with PIL (an unreadable file skips the row).
        text_only: attach no image at all (no check either).
        allow_missing: keep a row whose image file is missing, without the image
            (``meta["image_missing"] = True``), instead of skipping it.

    Counters ``found`` and ``missing`` let a loader tell "all images missing" apart.
    """

    def __init__(
        self,
        root: Path,
        *,
        cache_dir: str | Path | None = None,
        verify: bool = True,
        text_only: bool = False,
        allow_missing: bool = False,
    ) -> None:
        self.root = Path(root)
        self._cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.verify = verify
        self.text_only = text_only
        self.allow_missing = allow_missing
        self.found = 0
        self.missing = 0
        self.first_missing: Path | None = None
        self._last_tried: Path | None = None

    # ------------------------------------------------------------------ public

    def resolve(self, value: Any, *, encoded: bool = False) -> tuple[list[str], bool]:
        """``(paths, missing)`` for an image field value.

        Strings are file paths (relative to ``root``) or, when no such file exists and they look
        like it, base64; with ``encoded=True`` strings are always base64 (VLMEvalKit TSV cells).
        ``missing`` is True when a file was missing and ``allow_missing`` kept the row (no images).
        Raises :class:`SkipRow` for a missing (when not allowed), unreadable or undecodable image.
        """
        if self.text_only:
            return [], False
        values = self._flatten(value)
        if not values:
            return [], False
        paths: list[str] = []
        for v in values:
            try:
                paths.append(str(self._one(v, encoded)))
            except SkipRow as e:
                if e.reason == IMAGE_MISSING:
                    self.missing += 1
                    if self.first_missing is None:
                        self.first_missing = self._last_tried
                    if self.allow_missing:
                        return [], True
                raise
        self.found += 1
        return paths, False

    def attach(self, value: Any, meta: dict[str, Any], *, encoded: bool = False) -> list[str]:
        """:meth:`resolve`, marking ``meta["image_missing"]`` when a missing image was allowed."""
        paths, missing = self.resolve(value, encoded=encoded)
        if missing:
            meta["image_missing"] = True
        return paths

    @property
    def cache_dir(self) -> Path:
        """The folder decoded images go to (created on first use)."""
        if self._cache_dir is None:
            self._cache_dir = Path(tempfile.mkdtemp(prefix="slowthink-images-"))
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SlowthinkError(
                f"cannot create image cache folder {self._cache_dir}: {e.strerror or e}"
            ) from None
        return self._cache_dir

    def write_bytes(self, data: bytes) -> Path:
        """Write encoded image bytes to the cache (once per content) and return the file."""
        fmt = image_format(data)
        if fmt is None:
            raise SkipRow(BAD_IMAGE_DATA)
        target = self.cache_dir / f"{hashlib.sha1(data).hexdigest()[:20]}.{fmt}"
        if not (target.is_file() and target.stat().st_size == len(data)):
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        return target

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _flatten(value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, str):
            s = value.strip()
            if not s:
                return []
            if s.startswith("[") and s.endswith("]"):  # a JSON list in a CSV/TSV cell
                try:
                    parsed = json.loads(s)
                except json.JSONDecodeError:
                    return [s]
                return [v for v in parsed if v not in (None, "")] if isinstance(parsed, list) else [s]
            return [s]
        if isinstance(value, (list, tuple)):
            return [v for v in value if v is not None and v != ""]
        return [value]

    def _one(self, v: Any, encoded: bool) -> Path:
        if isinstance(v, (bytes, bytearray)):
            return self.write_bytes(bytes(v))
        if isinstance(v, dict):  # Hugging Face datasets Image feature
            if v.get("bytes"):
                return self.write_bytes(bytes(v["bytes"]))
            if v.get("path"):
                return self._path(str(v["path"]))
            raise SkipRow(BAD_IMAGE_DATA)
        if isinstance(v, str):
            if encoded or v.startswith("data:"):
                return self.write_bytes(self.decode_base64(v))
            try:
                return self._path(v)
            except SkipRow as e:
                if e.reason != IMAGE_MISSING or not looks_like_base64(v):
                    raise
                try:  # no such file, but it may be an embedded image
                    return self.write_bytes(self.decode_base64(v))
                except SkipRow:
                    raise e from None
        raise SkipRow(BAD_IMAGE_DATA)

    @staticmethod
    def decode_base64(value: str) -> bytes:
        """Bytes of a base64 string or ``data:`` URL; :class:`SkipRow` when it does not decode."""
        s = value.split(",", 1)[1] if value.startswith("data:") else value
        s = re.sub(r"\s+", "", s)
        try:
            if "-" in s or "_" in s:
                return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            return base64.b64decode(s + "=" * (-len(s) % 4))
        except (binascii.Error, ValueError):
            raise SkipRow(BAD_IMAGE_DATA) from None

    def _path(self, rel: str) -> Path:
        if len(rel) > _MAX_PATH_LEN or "\n" in rel or "\x00" in rel:
            raise SkipRow(IMAGE_MISSING)
        p = Path(rel).expanduser()
        tries = [p] if p.is_absolute() else [self.root / p, self.root / p.name]
        for q in tries:
            if _is_file(q):
                if self.verify and not readable(q):
                    raise SkipRow(IMAGE_UNREADABLE)
                return q.resolve()
        self._last_tried = tries[0]
        raise SkipRow(IMAGE_MISSING)


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # name too long, embedded NUL, ...
        return False


def _n_images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def all_missing_error(name: str, resolver: ImageResolver, hint: str) -> SlowthinkError:
    """The one-line error for a load where every image was missing."""
    example = resolver.first_missing or resolver.root
    return SlowthinkError(
        f"{name}: no image found ({_n_images(resolver.missing)} missing, e.g. {example}). {hint} "
        "To run text-only, pass allow_missing_images=True (keeps every question, no image) "
        "or text_only=True (attaches no image at all)."
    )


def image_notes(name: str, col: Any, resolver: ImageResolver, hint: str) -> None:
    """After a load: raise when every image was missing and nothing was kept; else add notes.

    ``col`` is the loader's :class:`~slowthink.benchmarks.base.Collector`.
    """
    if resolver.text_only:
        col.notes.append("text-only: images not attached")
        return
    if not resolver.missing:
        return
    if resolver.found == 0 and not resolver.allow_missing and not col.problems:
        raise all_missing_error(name, resolver, hint)
    if resolver.allow_missing:
        if resolver.found == 0:
            col.notes.append(
                f"text-only: all {resolver.missing} images missing (e.g. {resolver.first_missing})"
            )
        else:
            col.notes.append(f"{_n_images(resolver.missing)} missing, kept without image")
