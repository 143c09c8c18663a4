"""Opening, checking and encoding images: the one place every engine, scorer and loader uses.

An image is a file path (``str`` / ``Path``) or a PIL image (see :class:`slowthink.types.Message`).
A path that cannot be used gives one :class:`SlowthinkError` line naming the path and the fix:
``image not found: PATH ...`` when the file is not there, ``cannot open image PATH: it cannot be
read as an image ...`` when it is not an image PIL can decode.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from pathlib import Path

from PIL import Image

from slowthink.types import SlowthinkError

#: Formats that every OpenAI-compatible server takes in a ``data:`` URL (file suffix -> MIME type).
WEB_FORMATS: dict[str, str] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
}
_FIX = "check the image path in the problem"
_FORMATS_HINT = "pass a PNG, JPEG, GIF or WebP file"


def image_format(data: bytes) -> str | None:
    """The file suffix of encoded image bytes (``png``, ``jpg``, ...), or None when PIL cannot read them.

    >>> buf = io.BytesIO(); Image.new("RGB", (1, 1)).save(buf, format="JPEG")
    >>> image_format(buf.getvalue()), image_format(b"not an image")
    ('jpg', None)
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").lower()
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError, DecompressionBomb...)
        return None
    return {"jpeg": "jpg", "": "img"}.get(fmt, fmt)


def _read_error(path: Path, e: OSError, fix: str) -> SlowthinkError:
    reason = e.strerror or str(e)
    if isinstance(e, FileNotFoundError):
        return SlowthinkError(f"image not found: {path} (cannot read image: {reason}); {fix}")
    return SlowthinkError(f"cannot read image {path}: {reason}; {fix}")


def _decode_error(path: Path, e: Exception) -> SlowthinkError:
    detail = (str(e).strip() or type(e).__name__).splitlines()[0]
    return SlowthinkError(
        f"cannot open image {path}: it cannot be read as an image ({type(e).__name__}: {detail}); {_FORMATS_HINT}"
    )


def open_image(image: str | os.PathLike[str] | Image.Image, fix: str = _FIX) -> Image.Image:
    """A PIL image in RGB from a path or a PIL image (returned as is when already RGB).

    ``fix`` ends the error message of a path that cannot be read (where the path came from)."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    path = Path(image)
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except OSError as e:
        if not path.is_file():
            raise _read_error(path, e, fix) from e
        raise _decode_error(path, e) from e
    except Exception as e:  # PIL raises many types (SyntaxError, ValueError, DecompressionBomb...)
        raise _decode_error(path, e) from e


def check_image(path: str | os.PathLike[str], fix: str = _FIX) -> str:
    """``path`` as a string once the file is there and decodes as an image (an up-front check)."""
    p = Path(path)
    if not p.is_file():
        raise SlowthinkError(f"image not found: {path} (cannot read image: no such file); {fix}")
    try:
        with Image.open(p) as im:
            im.verify()
    except Exception as e:
        raise _decode_error(p, e) from e
    return str(p)


def image_data_url(image: str | os.PathLike[str] | Image.Image, fix: str = _FIX) -> str:
    """A ``data:`` URL holding the image: a file's own bytes (its type from the suffix, else sniffed;
    one of :data:`WEB_FORMATS`), or a PIL image encoded as PNG."""
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        img = image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGB")
        img.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    path = Path(image)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _read_error(path, e, fix) from e
    mime = mimetypes.guess_type(path.name)[0]
    if not mime or not mime.startswith("image/"):
        mime = WEB_FORMATS.get(image_format(data) or "")
        if mime is None:
            raise SlowthinkError(f"{path} is not a known image format ({_FORMATS_HINT})")
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


__all__ = ["WEB_FORMATS", "check_image", "image_data_url", "image_format", "open_image"]
