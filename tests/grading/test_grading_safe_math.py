"""safe_math: pre-checks, the worker's time bound, restarts, and never raising."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from slowthink.grading import grade, safe_math
from slowthink.grading.safe_math import VerifyResult, precheck, verify_latex
from tests.grading.grading_helpers import TIME_LIMIT_S, make_problem, timed

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
    ("[" * 300, "nested too deep"),  # open brackets
    ("\\left(" * 7 + "1" + "\\right)" * 7, "nested too deep"),  # \left( chain past the bound
    ("\\frac{1}{\\frac{1}{\\sqrt{2}}}", None),  # reasonable nesting
    ("[[1, 2], [3, 4]]", None),  # nested list
    ("x^{2}+" * 40 + "1", "too many terms"),  # long sum
    ("(" + ",".join(str(k) for k in range(40)) + ")", "too many terms"),  # long tuple
    ("e^{e^{e^{x}}}", "power tower"),  # symbolic tower
    ("(999!)!", "huge factorial"),  # factorial of a factorial
    ("n!!", None),  # double factorial
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


def test_a_timed_out_worker_is_replaced_at_once(mv_worker):
    """After a hung call the next worker starts right away (not at the next call), so its start
    overlaps whatever the caller does in between."""
    assert safe_math._debug_sleep(30, 0.5) == {"timeout": True}
    worker = safe_math._state.worker
    assert worker.proc is not None and worker.proc.poll() is None and not worker.ready
    assert safe_math.start_worker() and worker.ready


def test_one_grade_shares_one_budget(monkeypatch):
    """Ten options to check by math-verify, every call hangs: the first call's timeout ends the
    grade's math-verify work, well within GRADE_BUDGET_S; calls that return share the budget."""
    calls: list[float] = []

    def hung(request, timeout_s):
        calls.append(timeout_s)
        time.sleep(timeout_s)
        return {"timeout": True}

    monkeypatch.setattr(safe_math, "_call", hung)
    safe_math._verify_cached.cache_clear()
    problem = make_problem("A", choices=[f"\\sqrt{{{k}}}" for k in range(2, 12)], answer_type="choice")
    try:
        g, elapsed = timed(grade, "\\sqrt{50}", problem)
    finally:
        safe_math._verify_cached.cache_clear()
    assert not g.correct and g.note is None  # no option matched
    assert calls == [safe_math.DEFAULT_TIMEOUT_S]  # after one timeout, no more calls in this grade
    assert elapsed < safe_math.GRADE_BUDGET_S + 0.15
    # Calls that answer (slowly) share the budget: each gets what is left, until too little is.
    calls.clear()

    def slow(request, timeout_s):
        calls.append(timeout_s)
        time.sleep(0.5)
        return {"result": False, "parsed": True}

    monkeypatch.setattr(safe_math, "_call", slow)
    try:
        g, elapsed = timed(grade, "\\sqrt{51}", problem)
    finally:
        safe_math._verify_cached.cache_clear()
    assert not g.correct and 2 < len(calls) < 10 and calls[-1] < calls[0]
    assert elapsed < safe_math.GRADE_BUDGET_S + 0.6
    # Outside a grade, a call gets its whole timeout; a spent budget makes no call at all.
    calls.clear()
    with safe_math.grade_budget(0.0):
        assert verify_latex("\\sqrt{7}", "\\sqrt{8}").note == "timeout: grade budget spent"
    assert calls == []


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
