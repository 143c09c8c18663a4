"""Fixtures for the grading tests."""

from __future__ import annotations

import pytest

from slowthink.grading import safe_math


@pytest.fixture(scope="session")
def mv_worker() -> None:
    """Start the math-verify worker once, so timed cases do not pay its start-up."""
    assert safe_math.start_worker(), "math-verify worker did not start"
