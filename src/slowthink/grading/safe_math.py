"""math-verify with a hard time bound that works in the main thread, worker threads and worker
processes.

math-verify bounds its own work with ``signal.alarm``, which only works in the main thread. Here
its timeouts are off and every call goes to a small persistent worker subprocess (one per
process, started on first use, shared by threads under a lock); a call that runs past
``timeout_s`` kills the worker (a fresh one starts at once, in the background) and counts as
*not equivalent* with the note ``timeout``. Cheap pre-checks reject inputs that could only be
hostile or hopeless (Python like ``__import__('os')``, unbalanced braces, brackets nested more
than :data:`MAX_NESTING` deep, 100+ digit runs, power towers like ``10**10**10``, ``9^9^9^9`` or
``e^{e^{e^{x}}}``, huge exponents or factorials) before any parsing. Inside :func:`grade_budget`
(every :func:`~slowthink.grading.grade` runs in one) all math-verify calls share one deadline, so
a grade returns within :data:`GRADE_BUDGET_S` however many comparisons it makes (the worker's
one-time start, about a second or two per process, is not counted). The worker uses only math-verify's LaTeX parser, never sympy's ``parse_expr`` (which
evaluates Python), and runs with a capped address space. Results are cached per pair.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from slowthink.grading._latex import balanced

DEFAULT_TIMEOUT_S = 1.5
"""Seconds one math-verify comparison (parse both sides + verify) may take. Real answers take
milliseconds (the slowest of the shared benchmark data, well under this; see bench/RESULTS.md)."""
GRADE_BUDGET_S = 1.8
"""Seconds all math-verify calls of one grade may take together (:func:`grade_budget`)."""
MIN_CALL_S = 0.05
"""A call with less of the budget left is not made (``timeout: grade budget spent``)."""
MAX_NESTING = 6
"""Answers with brackets (``( [ { \\{``, ``\\left(`` ...) nested deeper are not sent to
math-verify: its parser slows down with depth (``(`` x 7 around a number took 1.3 s on a loaded
2-core machine, ``[`` x 1000 ran into the timeout); the shared benchmark data nests 3 deep at most."""
STARTUP_TIMEOUT_S = 60.0
"""Seconds the worker may take to start (importing sympy and math-verify); not counted in a call."""
MAX_LATEX_CHARS = 400
"""Longer answers are not sent to math-verify (the longest gold answer or option of the shared
benchmark data has 182 characters; math-verify takes about a second for 250 characters of sums)."""
MAX_TERMS = 30
"""Answers with more terms (``+ - = , < >``, ``\\frac``, ``\\sqrt``, ``\\cdot``, ``\\times``, ``\\cup``
...) are not sent to math-verify: its parser takes ~0.3 s for 10 terms and grows linearly (the
shared data has at most 12)."""
MAX_DIGIT_RUN = 100
"""Answers with a longer run of digits are not sent to math-verify."""
CACHE_SIZE = 4096
"""How many (gold, pred) results are remembered per process."""

_WORKER_PATH = str(Path(__file__).with_name("_mv_worker.py"))
_UNSAFE = re.compile(
    r"__|\bimport\b|\blambda\b|\beval\b|\bexec\b|\bcompile\s*\(|\bopen\s*\(|\bgetattr\b|\bsetattr\b|\bglobals\b"
    r"|\blocals\b|\bvars\s*\(|\bos\s*\.|\bsys\s*\.|\bsubprocess\b|\bbuiltins\b",
    re.IGNORECASE,
)
_POW = r"(?:\*\*|\^)"
_NUMERIC_POWER_CHAIN = re.compile(rf"\d\s*[}})]?\s*{_POW}\s*[{{(]?\s*\d+(?:\.\d+)?\s*[}})]?\s*{_POW}")
_NESTED_NUMERIC_POWER = re.compile(rf"{_POW}\s*[{{(]\s*\d+(?:\.\d+)?\s*{_POW}")
_BIG_EXPONENT = re.compile(rf"{_POW}\s*[{{(]?\s*-?\s*\d{{5,}}")
_BIG_FACTORIAL = re.compile(r"\d{4,}\s*!|\\(?:factorial|binom)\s*\{\s*\d{4,}")
_DIGIT_RUN = re.compile(rf"\d{{{MAX_DIGIT_RUN + 1}}}")
_SYMBOLIC_TOWER = re.compile(rf"{_POW}\s*[{{(][^}})]*{_POW}\s*[{{(][^}})]*{_POW}")
_FACTORIAL_CHAIN = re.compile(r"!\s*[)\]}]+\s*!")
_OPENERS, _CLOSERS = "([{", ")]}"
_TERM = re.compile(
    r"[-+=,<>]|\\(?:frac|dfrac|tfrac|sqrt|cdot|times|div|pm|mp|cup|cap|le|ge|leq|geq|neq)(?![a-zA-Z])"
)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one bounded math-verify comparison.

    ``note`` is None for a normal answer; else why the result is False without a full check:
    ``"rejected gold: ..."``/``"rejected pred: ..."`` (pre-check), ``"unparsed"`` (math-verify
    found no expression on one side), ``"timeout"``, ``"error: ..."``, ``"unavailable: ..."``.
    """

    equivalent: bool
    note: str | None = None


def nesting_depth(text: str) -> int:
    """How deep brackets of any kind nest in ``text`` (an interval's mixed ends count as a pair).

    >>> nesting_depth("\\\\frac{\\\\sqrt{2}}{2}"), nesting_depth("[[1,2],[3,4]]"), nesting_depth("[" * 1000)
    (2, 2, 1000)
    """
    depth = deepest = 0
    for ch in text:
        if ch in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSERS:
            depth = max(depth - 1, 0)
    return deepest


def precheck(text: str) -> str | None:
    """Why ``text`` must not go to math-verify, or None when it may.

    >>> precheck("\\\\frac{1}{2}") is None, precheck("__import__('os')"), precheck("10**10**10")
    (True, 'python code', 'power tower')
    >>> precheck("\\\\frac{1}{"), precheck("9" * 5000), precheck("[" * 100)
    ('unbalanced braces', 'too many digits', 'nested too deep')
    """
    if _DIGIT_RUN.search(text[: MAX_LATEX_CHARS + 1]):
        return "too many digits"
    if len(text) > MAX_LATEX_CHARS:
        return "too long"
    if _UNSAFE.search(text):
        return "python code"
    if nesting_depth(text) > MAX_NESTING:
        return "nested too deep"
    if len(_TERM.findall(text)) > MAX_TERMS:
        return "too many terms"
    if (
        _NUMERIC_POWER_CHAIN.search(text)
        or _NESTED_NUMERIC_POWER.search(text)
        or _SYMBOLIC_TOWER.search(text)
    ):
        return "power tower"
    if _BIG_EXPONENT.search(text):
        return "huge exponent"
    if _BIG_FACTORIAL.search(text) or _FACTORIAL_CHAIN.search(text):
        return "huge factorial"
    if not balanced(text):
        return "unbalanced braces"
    return None


class _WorkerError(Exception):
    pass


class _Worker:
    """One math-verify subprocess speaking JSON lines; restarted after a timeout or crash."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.buf = b""
        self.next_id = 0

    def _spawn(self) -> None:
        """Start the process; it imports math-verify while the caller goes on (see :meth:`_start`)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-u", _WORKER_PATH],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.ready = False
        self.buf = b""

    def _start(self) -> None:
        """Make sure a worker runs and has said it is ready."""
        if self.proc is None or self.proc.poll() is not None:
            self._spawn()
        if self.ready:
            return
        line = self._read_line(STARTUP_TIMEOUT_S)
        msg = _loads(line) if line is not None else None
        if not msg or not msg.get("ready"):
            self.kill()
            why = msg.get("error") if msg else "no reply"
            raise _WorkerError(f"math-verify worker did not start ({why})")
        self.ready = True

    def _read_line(self, timeout_s: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker exited
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request; ``{"timeout": True}`` or ``{"error": ...}`` when no reply came."""
        for _attempt in range(2):
            self._start()
            assert self.proc is not None and self.proc.stdin is not None
            self.next_id += 1
            rid = self.next_id
            try:
                self.proc.stdin.write((json.dumps({**request, "id": rid}) + "\n").encode("utf-8"))
                self.proc.stdin.flush()
            except OSError:  # the worker died since the last call: start a new one and retry once
                self.kill()
                continue
            while True:
                line = self._read_line(timeout_s)
                if line is None:
                    exited = self.proc.poll() is not None
                    self.kill()
                    if not exited:  # a hung call: have the next worker warm before it is needed
                        self._spawn()
                    return {"error": "worker exited"} if exited else {"timeout": True}
                msg = _loads(line)
                if msg is not None and msg.get("id") == rid:
                    return msg
        return {"error": "worker unavailable"}

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        self.ready = False
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def abandon(self) -> None:
        """In a forked child: drop the parent's worker without touching it."""
        proc, self.proc = self.proc, None
        self.ready = False
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    os.close(f.fileno())
            except (OSError, ValueError):
                pass
        proc.returncode = -1  # not our child: never wait for it


def _loads(line: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


class _State:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.worker = _Worker()


_state = _State()


def _current() -> _State:
    global _state
    if _state.pid != os.getpid():  # forked without the at-fork hook
        _after_fork_in_child()
    return _state


def _after_fork_in_child() -> None:
    global _state
    old, _state = _state, _State()
    old.worker.abandon()
    _verify_cached.cache_clear()


def _call(request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    state = _current()
    with state.lock:
        try:
            return state.worker.call(request, timeout_s)
        except (_WorkerError, OSError) as e:
            return {"unavailable": str(e)}


def start_worker(timeout_s: float = STARTUP_TIMEOUT_S) -> bool:
    """Start this process's math-verify worker now (else the first comparison starts it);
    True when it answers.

    >>> start_worker()
    True
    """
    return _call({"op": "ping"}, timeout_s).get("result") is True


def shutdown() -> None:
    """Stop this process's worker (it also exits on its own when this process ends).

    >>> shutdown()
    """
    state = _current()
    with state.lock:
        state.worker.kill()


_budget = threading.local()
_F = TypeVar("_F", bound=Callable[..., Any])


@contextmanager
def grade_budget(seconds: float = GRADE_BUDGET_S) -> Iterator[None]:
    """All :func:`verify_latex` calls in this block (this thread) share ``seconds``: each call's
    timeout is cut to what is left, none is made with less than :data:`MIN_CALL_S` left, and none
    after one has timed out (its worker is being replaced; waiting for the new one would not
    help this grade). Nested blocks keep the earlier deadline.

    >>> with grade_budget(0.0):
    ...     verify_latex("x+1", "1+x")
    VerifyResult(equivalent=False, note='timeout: grade budget spent')
    """
    outer = getattr(_budget, "deadline", None)
    outer_timed_out = getattr(_budget, "timed_out", False)
    deadline = time.monotonic() + max(float(seconds), 0.0)
    _budget.deadline = deadline if outer is None else min(outer, deadline)
    try:
        yield
    finally:
        _budget.deadline = outer
        _budget.timed_out = outer_timed_out


def within_grade_budget(fn: _F) -> _F:
    """Run ``fn`` inside :func:`grade_budget`: :data:`GRADE_BUDGET_S`, or the ``timeout_s``
    keyword when that is longer (a caller who allows one call more time gets it)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        with grade_budget(max(GRADE_BUDGET_S, float(kw.get("timeout_s", DEFAULT_TIMEOUT_S)))):
            return fn(*args, **kw)

    return wrapper  # type: ignore[return-value]


def _as_latex(text: str) -> str:
    t = text.strip()
    if "$" in t or t.startswith(("\\(", "\\[")):
        return t
    return f"${t}$"


@lru_cache(maxsize=CACHE_SIZE)
def _verify_cached(gold: str, pred: str, timeout_s: float) -> VerifyResult:
    msg = _call({"op": "verify", "gold": gold, "pred": pred}, timeout_s)
    if msg.get("timeout"):
        return VerifyResult(False, "timeout")
    if "unavailable" in msg:
        return VerifyResult(False, f"unavailable: {msg['unavailable']}")
    if "error" in msg:
        return VerifyResult(False, f"error: {msg['error']}")
    if not msg.get("parsed", True):
        return VerifyResult(False, "unparsed")
    return VerifyResult(bool(msg.get("result")))


def verify_latex(gold: str, pred: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> VerifyResult:
    """Whether ``pred`` equals ``gold`` by math-verify (LaTeX: fractions, radicals, intervals,
    sets, equations), bounded by ``timeout_s`` seconds in any thread or process.

    Bare answers are wrapped in ``$...$``; text with ``$`` is passed as is. Never raises.

    >>> verify_latex("\\\\frac{1}{2}", "0.5"), verify_latex("2\\\\sqrt{3}", "\\\\sqrt{12}")
    (VerifyResult(equivalent=True, note=None), VerifyResult(equivalent=True, note=None))
    >>> verify_latex("(0, 1]", "[0, 1]").equivalent, verify_latex("1", "10**10**10").note
    (False, 'rejected pred: power tower')
    """
    for side, text in (("gold", gold), ("pred", pred)):
        why = precheck(text)
        if why is not None:
            return VerifyResult(False, f"rejected {side}: {why}")
    deadline = getattr(_budget, "deadline", None)
    if deadline is None:
        return _verify_cached(_as_latex(gold), _as_latex(pred), float(timeout_s))
    left = deadline - time.monotonic()
    if left < MIN_CALL_S or getattr(_budget, "timed_out", False):
        return VerifyResult(False, "timeout: grade budget spent")
    # Whole tenths, so the cache key does not change with every call's remaining time.
    timeout_s = min(float(timeout_s), max(MIN_CALL_S, int(left * 10) / 10))
    result = _verify_cached(_as_latex(gold), _as_latex(pred), timeout_s)
    if result.note == "timeout":
        _budget.timed_out = True
    return result


def _debug_sleep(seconds: float, timeout_s: float) -> dict[str, Any]:
    """Ask the worker to sleep (tests of the time bound): ``{"timeout": True}`` past the bound."""
    return _call({"op": "sleep", "seconds": seconds}, timeout_s)


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere _current() notices the new pid
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
