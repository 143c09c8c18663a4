"""``key=value`` option strings (slowthink.options): typing and one-line errors (examples: its doctests)."""

from __future__ import annotations

import pytest

from slowthink.options import parse_kv, scalar
from slowthink.types import SlowthinkError


def test_scalar_types_like_yaml() -> None:
    assert [scalar(v) for v in ["off", "NULL", " 7 ", "1e3", "a b"]] == [False, None, 7, 1000.0, "a b"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("a=1,b", "bad style option 'b' in 'a=1,b'"), ("a=1,a=2", "style option 'a' given twice in 'a=1,a=2'")],
)
def test_parse_kv_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(SlowthinkError) as e:
        parse_kv(spec, what="style option")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
