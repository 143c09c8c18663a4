"""VLMEvalKit-style TSV (MMStar) with base64 images decoded to a cache folder."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import pytest
from PIL import Image

from slowthink.benchmarks import load_benchmark
from slowthink.types import SlowthinkError


def png_b64(color: str = "red", size: tuple[int, int] = (6, 4)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(header)
        w.writerows(rows)
    return path


HEADER = ["index", "question", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]


@pytest.fixture
def mmstar_tsv(tmp_path: Path) -> Path:
    red, blue = png_b64("red"), png_b64("blue")
    rows = [
        [
            "0",
            "What colour is it?",
            "red",
            "blue",
            "green",
            "black",
            "A",
            "coarse perception",
            "image emotion",
            red,
        ],
        ["1", "Is it blue?", "yes", "no", "", "", "A", "fine-grained perception", "recognition", blue],
        ["2", "Same picture as row 0?", "yes", "no", "", "", "B", "math", "numeric commonsense", "0"],
        ["3", "Broken image", "x", "y", "", "", "A", "math", "geometry", "!!!not base64!!!" * 30],
        ["4", "Answer out of range", "x", "y", "", "", "D", "math", "geometry", red],
        ["5", "Gap in options", "x", "", "z", "", "A", "math", "geometry", red],
    ]
    return write_tsv(tmp_path / "MMStar.tsv", HEADER, rows)


def test_mmstar_tsv(mmstar_tsv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = load_benchmark("mmstar", mmstar_tsv, image_dir=cache)
    assert [p.id for p in r] == ["0", "1", "2"]
    assert r.skipped == {"bad image data": 1, "answer not in choices": 1, "bad choices": 1}
    p0, p1, p2 = r.problems
    assert p0.choices == ["red", "blue", "green", "black"] and p0.answer == "A" and p0.answer_type == "choice"
    assert p0.meta["category"] == "coarse perception" and p0.meta["l2_category"] == "image emotion"
    assert p1.choices == ["yes", "no"]  # trailing empty option columns dropped
    img = Path(p0.images[0])
    assert img.parent == cache and img.suffix == ".png"
    with Image.open(img) as im:
        assert im.size == (6, 4) and im.getpixel((0, 0)) == (255, 0, 0)
    assert p2.images == p0.images  # "0" refers to row 0's image; same content, same file
    assert len(list(cache.iterdir())) == 2


def test_cache_reused_and_temp_default(mmstar_tsv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_benchmark("mmstar", mmstar_tsv, image_dir=cache)
    mtime = Path(first.problems[0].images[0]).stat().st_mtime_ns
    second = load_benchmark("mmstar", mmstar_tsv, image_dir=cache)
    assert Path(second.problems[0].images[0]).stat().st_mtime_ns == mtime
    tmp = load_benchmark("vlmeval", mmstar_tsv, limit=1)
    assert Path(tmp.problems[0].images[0]).is_file() and "slowthink-images-" in tmp.problems[0].images[0]


def test_hint_inline_options_and_free_form(tmp_path: Path) -> None:
    header = ["index", "question", "hint", "answer", "answer_type", "precision", "category", "image"]
    rows = [
        [
            "10",
            "Where is the cat?\nOptions: A: on the mat, B: under the bed",
            "",
            "B",
            "",
            "",
            "x",
            png_b64(),
        ],
        ["11", "How long is it?", "Use the ruler.", "2.5", "float", "1", "y", png_b64()],
    ]
    f = write_tsv(tmp_path / "v.tsv", header, rows)
    mc, num = load_benchmark("vlmeval", f, image_dir=tmp_path / "c").problems
    assert (
        mc.question == "Where is the cat?"
        and mc.choices == ["on the mat", "under the bed"]
        and mc.answer == "B"
    )
    assert num.question == "Hint: Use the ruler.\nHow long is it?"
    assert (num.answer, num.answer_type, num.precision, num.choices) == ("2.5", "number", 1, None)


def test_text_only_skips_decoding(mmstar_tsv: Path, tmp_path: Path) -> None:
    r = load_benchmark("mmstar", mmstar_tsv, image_dir=tmp_path / "never", text_only=True)
    assert all(p.images == [] for p in r) and not (tmp_path / "never").exists()


def test_all_rows_bad(tmp_path: Path) -> None:
    f = write_tsv(tmp_path / "bad.tsv", HEADER, [["0", "q", "x", "y", "", "", "A", "c", "d", "%%%" * 200]])
    with pytest.raises(SlowthinkError, match=r"no usable problem .*bad image data: 1"):
        load_benchmark("vlmeval", f, image_dir=tmp_path / "c")


def test_meta_only_tsv_takes_the_images_vlmevalkit_extracted(tmp_path: Path) -> None:
    """A TSV without an image column (VLMEvalKit's meta-only files) finds row ``index``'s image in
    ``images/<file stem>/<index>.jpg`` next to it, where VLMEvalKit dumps a dataset's images; a row
    whose image is not there is skipped as image-missing, like any missing image."""
    dumped = tmp_path / "images" / "MathVista_MINI"
    dumped.mkdir(parents=True)
    Image.new("RGB", (5, 5), "green").save(dumped / "1.jpg")
    Image.new("RGB", (5, 5), "blue").save(dumped / "2.png")
    tsv = write_tsv(
        tmp_path / "MathVista_MINI.tsv",
        ["index", "question", "answer", "answer_type"],
        [
            ["1", "How many?", "3", "integer"],
            ["2", "How long?", "4", "integer"],
            ["3", "Which?", "5", "integer"],
        ],
    )
    r = load_benchmark("vlmeval", str(tsv))
    got = {p.id: p.images for p in r.problems}
    assert got == {"1": [str(dumped / "1.jpg")], "2": [str(dumped / "2.png")]}
    assert "image" in str(r.skipped)
    kept = load_benchmark("vlmeval", str(tsv), allow_missing_images=True).problems
    assert [(p.id, p.images, p.meta.get("image_missing")) for p in kept][2] == ("3", [], True)
