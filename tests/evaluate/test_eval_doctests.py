"""The docstring examples in slowthink.evaluate run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "slowthink.evaluate.cli",
    "slowthink.evaluate.config",
    "slowthink.evaluate.metrics",
    "slowthink.evaluate.subsample",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
