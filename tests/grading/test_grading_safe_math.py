"""safe_math: pre-checks, the worker's time bound, restarts, and never raising."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from slowthink.grading import safe_math
from slowthink.grading.safe_math import VerifyResult, precheck, verify_latex
from tests.grading.grading_helpers import TIME_LIMIT_S, timed

PRECHECK_CASES = [
    ("\\frac{1}{2}", None),  # ordinary LaTeX
    ("x^{2}+y^{2}=49", None),  # powers that are not a tower
    ("e^{x^2}", None),  # symbolic nested power is fine
    ("2^{10}", None),  # small power
    ("(0, 1] \\cup [2, 3)", None),  # interval union
    ("__import__('os').system('ls')", "python code"),  # dunder call
    ("lambda: 0", "python code"),  # lambda
    ("os.system('ls')", "python code"),  # attribute on os
    ("10**10**10", "power tower"),  # python tower
    ("9^9^9^9", "power tower"),  # LaTeX tower
    ("2^{2^{100}}", "power tower"),  # nested tower in braces
    ("10^{1000000}", "huge exponent"),  # huge exponent
    ("100000!", "huge factorial"),  # huge factorial
    ("\\frac{1}{", "unbalanced braces"),  # unbalanced
    ("}{", "unbalanced braces"),  # closing first
    ("9" * 5000, "too many digits"),  # 5,000-digit number
    ("x" * 2000, "too long"),  # long text
]


@pytest.mark.parametrize(("text", "why"), PRECHECK_CASES)
def test_precheck(text, why):
    assert precheck(text) == why


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("\\frac{1}{2}", "0.5", True),  # rational vs decimal
        ("2\\sqrt{3}", "\\sqrt{12}", True),  # radicals
        ("(0, 1]", "(0,1]", True),  # interval
        ("(0, 1]", "[0,1]", False),  # different interval
        ("\\{1, 2\\}", "\\{2, 1\\}", True),  # set order
        ("x + 1", "1 + x", True),  # symbolic
        ("$C=40.84 \\mathrm{~cm}$", "40.84", True),  # answer inside text with $
    ],
)
def test_verify_latex(gold, pred, expected, mv_worker):
    r = verify_latex(gold, pred)
    assert r == VerifyResult(expected, None)


def test_verify_latex_reports_rejections_without_calling_the_worker():
    r, elapsed = timed(verify_latex, "1", "__import__('os').system('echo hacked')")
    assert r == VerifyResult(False, "rejected pred: python code")
    assert elapsed < 0.5


def test_unparsable_answer_is_not_equivalent(mv_worker):
    r = verify_latex("\\frac{1}{2}", "the cat sat")
    assert not r.equivalent


def test_timeout_kills_the_worker_and_the_next_call_restarts_it(mv_worker):
    reply, elapsed = timed(safe_math._debug_sleep, 30, 1.0)
    assert reply == {"timeout": True}
    assert elapsed < TIME_LIMIT_S
    # A fresh worker serves the next (uncached) comparison.
    assert verify_latex("3\\sqrt{2}", "\\sqrt{18}", timeout_s=30) == VerifyResult(True, None)


def test_timeout_in_a_worker_thread(mv_worker):
    out: dict = {}

    def run() -> None:
        out["reply"], out["elapsed"] = timed(safe_math._debug_sleep, 30, 1.0)

    t = threading.Thread(target=run)
    t.start()
    t.join(TIME_LIMIT_S * 2)
    assert out["reply"] == {"timeout": True} and out["elapsed"] < TIME_LIMIT_S


def test_a_killed_worker_is_replaced(mv_worker):
    assert safe_math.start_worker()
    proc = safe_math._state.worker.proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert verify_latex("5\\sqrt{2}", "\\sqrt{50}", timeout_s=30).equivalent


def test_timeout_result_is_a_plain_false_with_a_note(monkeypatch):
    monkeypatch.setattr(safe_math, "_call", lambda request, timeout_s: {"timeout": True})
    safe_math._verify_cached.cache_clear()
    try:
        assert verify_latex("\\sqrt{7}", "\\sqrt{7.0}") == VerifyResult(False, "timeout")
    finally:
        safe_math._verify_cached.cache_clear()


def test_missing_worker_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(safe_math, "_call", lambda request, timeout_s: {"unavailable": "no python"})
    safe_math._verify_cached.cache_clear()
    try:
        r = verify_latex("\\sqrt{6}", "\\sqrt{6.0}")
        assert r.equivalent is False and r.note == "unavailable: no python"
    finally:
        safe_math._verify_cached.cache_clear()


def test_shutdown_then_use_again(mv_worker):
    safe_math.shutdown()
    assert safe_math._state.worker.proc is None
    t0 = time.perf_counter()
    assert safe_math.start_worker()
    assert time.perf_counter() - t0 < safe_math.STARTUP_TIMEOUT_S
