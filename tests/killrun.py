"""Run a real ``slowthink`` command as a subprocess, and ``kill -9`` one mid-run: the set-up of the
resume tests (eval, annotate, annotate on Ray), which then run the same command again and compare
its output with a run never interrupted.

::

    ref = run_cli(command(...))                         # a finished run
    written = kill_9_after(command(...), out / "records.jsonl", lines=4)
    resumed = run_cli(command(...))                     # the same command resumes
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env() -> dict[str, str]:
    """This environment with the repository's ``src`` and root on ``PYTHONPATH`` (slowthink and the
    test doubles importable in the subprocess)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO), e.get("PYTHONPATH")]))
    return e


def run_cli(args: Sequence[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``args`` to the end (stdout and stderr captured as text)."""
    return subprocess.run(list(args), env=cli_env(), capture_output=True, text=True, timeout=timeout_s)


def lines_in(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def kill_9_after(args: Sequence[str], records: Path, lines: int, timeout_s: float = 60) -> int:
    """Start ``args``, ``SIGKILL`` it once ``records`` holds ``lines`` lines (or after ``timeout_s``),
    check that it was killed (not finished) and return the lines it left in ``records``."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe nobody reads while it runs
        proc = subprocess.Popen(list(args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and lines_in(records) < lines and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        err.seek(0)
        said = err.read().decode(errors="replace")[-2000:]
    assert proc.returncode == -signal.SIGKILL, f"the run finished before it could be killed: {said}"
    return lines_in(records)
