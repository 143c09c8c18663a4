"""The docstring examples in slowthink.benchmarks run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "slowthink.benchmarks.base",
    "slowthink.benchmarks.choices",
    "slowthink.benchmarks.fields",
    "slowthink.benchmarks.files",
    "slowthink.benchmarks.generic",
    "slowthink.benchmarks.gsm8k",
    "slowthink.benchmarks.images",
    "slowthink.benchmarks.mathv",
    "slowthink.benchmarks.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
