"""math-verify with a hard time bound that works in the main thread, worker threads and worker
processes.

math-verify bounds its own work with ``signal.alarm``, which only works in the main thread. Here
its timeouts are off and every call goes to a small persistent worker subprocess (one per
process, started on first use, shared by threads under a lock); a call that runs past
``timeout_s`` kills the worker (the next call starts a fresh one) and counts as *not
equivalent* with the note ``timeout``. Cheap pre-checks reject inputs that could only be
hostile or hopeless (Python like ``__import__('os')``, unbalanced braces, 100+ digit runs,
power towers like ``10**10**10`` or ``9^9^9^9``, huge exponents or factorials) before any
parsing. The worker uses only math-verify's LaTeX parser, never sympy's ``parse_expr`` (which
evaluates Python), and runs with a capped address space. Results are cached per pair.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from slowthink.grading._latex import balanced

DEFAULT_TIMEOUT_S = 5.0
"""Seconds one math-verify comparison (parse both sides + verify) may take."""
STARTUP_TIMEOUT_S = 60.0
"""Seconds the worker may take to start (importing sympy and math-verify); not counted in a call."""
MAX_LATEX_CHARS = 1000
"""Longer answers are not sent to math-verify."""
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


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one bounded math-verify comparison.

    ``note`` is None for a normal answer; else why the result is False without a full check:
    ``"rejected gold: ..."``/``"rejected pred: ..."`` (pre-check), ``"unparsed"`` (math-verify
    found no expression on one side), ``"timeout"``, ``"error: ..."``, ``"unavailable: ..."``.
    """

    equivalent: bool
    note: str | None = None


def precheck(text: str) -> str | None:
    """Why ``text`` must not go to math-verify, or None when it may.

    >>> precheck("\\\\frac{1}{2}") is None, precheck("__import__('os')"), precheck("10**10**10")
    (True, 'python code', 'power tower')
    >>> precheck("\\\\frac{1}{"), precheck("9" * 5000)
    ('unbalanced braces', 'too many digits')
    """
    if _DIGIT_RUN.search(text[: MAX_LATEX_CHARS + 1]):
        return "too many digits"
    if len(text) > MAX_LATEX_CHARS:
        return "too long"
    if _UNSAFE.search(text):
        return "python code"
    if _NUMERIC_POWER_CHAIN.search(text) or _NESTED_NUMERIC_POWER.search(text):
        return "power tower"
    if _BIG_EXPONENT.search(text):
        return "huge exponent"
    if _BIG_FACTORIAL.search(text):
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
        self.buf = b""
        self.next_id = 0

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", _WORKER_PATH],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.buf = b""
        line = self._read_line(STARTUP_TIMEOUT_S)
        msg = _loads(line) if line is not None else None
        if not msg or not msg.get("ready"):
            self.kill()
            why = msg.get("error") if msg else "no reply"
            raise _WorkerError(f"math-verify worker did not start ({why})")

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
            if self.proc is None or self.proc.poll() is not None:
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
                    return {"error": "worker exited"} if exited else {"timeout": True}
                msg = _loads(line)
                if msg is not None and msg.get("id") == rid:
                    return msg
        return {"error": "worker unavailable"}

    def kill(self) -> None:
        proc, self.proc = self.proc, None
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
    return _verify_cached(_as_latex(gold), _as_latex(pred), float(timeout_s))


def _debug_sleep(seconds: float, timeout_s: float) -> dict[str, Any]:
    """Ask the worker to sleep (tests of the time bound): ``{"timeout": True}`` past the bound."""
    return _call({"op": "sleep", "seconds": seconds}, timeout_s)


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere _current() notices the new pid
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
