"""``slowthink.images``: the one place images are opened, checked, sniffed and encoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from slowthink.images import check_image, image_data_url, image_format, open_image
from slowthink.types import SlowthinkError


def test_open_image(tmp_path):
    p = tmp_path / "a.png"
    Image.new("L", (3, 2)).save(p)
    img = open_image(str(p))
    assert img.mode == "RGB" and img.size == (3, 2)
    with pytest.raises(SlowthinkError, match="image not found"):
        open_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(SlowthinkError, match="cannot open image"):
        open_image(tmp_path / "bad.png")


def test_open_image_keeps_an_rgb_pil_image_and_converts_others():
    rgb = Image.new("RGB", (1, 1))
    assert open_image(rgb) is rgb
    assert open_image(Image.new("L", (1, 1))).mode == "RGB"


def test_check_image_names_the_path_and_the_fix(tmp_path):
    good = tmp_path / "a.png"
    Image.new("RGB", (1, 1)).save(good)
    assert check_image(good) == str(good)
    with pytest.raises(SlowthinkError, match=r"image not found: .*missing\.png.*--image"):
        check_image(tmp_path / "missing.png", fix="check the path given to --image")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(SlowthinkError, match=r"cannot open image .*broken\.png: it cannot be read"):
        check_image(bad)


def test_image_format_sniffs_the_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="GIF")
    assert image_format(buf.getvalue()) == "gif"
    assert image_format(b"\x89PNG but not really") is None


def test_pil_image_and_sniffed_format(tmp_path):
    assert image_data_url(Image.new("RGB", (1, 1))).startswith("data:image/png;base64,")
    odd = tmp_path / "picture.bin"
    Image.new("RGB", (1, 1)).save(odd, format="PNG")
    assert image_data_url(odd).startswith("data:image/png;base64,")
    with pytest.raises(SlowthinkError, match="cannot read image"):
        image_data_url(tmp_path / "missing.png")
    tiff = tmp_path / "picture.dat"
    Image.new("RGB", (1, 1)).save(tiff, format="TIFF")
    with pytest.raises(SlowthinkError, match="not a known image format"):
        image_data_url(tiff)
