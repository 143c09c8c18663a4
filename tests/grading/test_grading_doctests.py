"""The doctest examples in every grading module run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "slowthink.grading",
    "slowthink.grading._latex",
    "slowthink.grading.numeric",
    "slowthink.grading.choices",
    "slowthink.grading.normalize",
    "slowthink.grading.extract",
    "slowthink.grading.safe_math",
    "slowthink.grading.compare",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, mv_worker):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or name == "slowthink.grading"
