"""The math-verify worker process (started by :mod:`slowthink.grading.safe_math`, never imported).

Protocol: one JSON object a line. After start it writes ``{"ready": true}`` (or
``{"ready": false, "error": ...}``), then answers each request line with one reply line:

- ``{"id": 1, "op": "verify", "gold": "...", "pred": "..."}`` ->
  ``{"id": 1, "result": true|false, "parsed": true|false}`` or ``{"id": 1, "error": "..."}``
- ``{"id": 2, "op": "ping"}`` -> ``{"id": 2, "result": true}``
- ``{"id": 3, "op": "sleep", "seconds": 10}`` (tests of the time bound) -> ``{"id": 3, "result": true}``

Only math-verify's LaTeX parser is used (its plain-expression parser calls sympy's
``parse_expr``, which evaluates Python). math-verify's own signal timeouts are off: the parent
kills this process when a call runs past its bound. The address space is capped so a huge
expression fails with MemoryError instead of swapping. The process exits when stdin closes.
"""

import sys

# Run as a script: the first path entry is this package's folder; drop it so no module here
# shadows a library module.
if sys.path and sys.path[0]:
    sys.path.pop(0)

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

MEMORY_LIMIT_BYTES = 4 * 1024**3


def _limit_memory() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the protocol
    logging.disable(logging.CRITICAL)

    def reply(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    _limit_memory()
    try:
        from math_verify import LatexExtractionConfig, parse, verify
    except Exception as e:  # math-verify missing or broken
        reply({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    config = [LatexExtractionConfig()]
    reply({"ready": True})
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        rid = req.get("id")
        try:
            op = req.get("op")
            if op == "verify":
                gold = parse(req["gold"], extraction_config=config, parsing_timeout=None)
                pred = parse(req["pred"], extraction_config=config, parsing_timeout=None)
                parsed = bool(gold) and bool(pred)
                result = parsed and bool(verify(gold, pred, timeout_seconds=None))
                reply({"id": rid, "result": result, "parsed": parsed})
            elif op == "ping":
                reply({"id": rid, "result": True})
            elif op == "sleep":
                time.sleep(float(req.get("seconds", 0)))
                reply({"id": rid, "result": True})
            else:
                reply({"id": rid, "error": f"unknown op {op!r}"})
        except Exception as e:  # MemoryError, RecursionError, sympy errors: report, keep serving
            reply({"id": rid, "error": type(e).__name__})


if __name__ == "__main__":
    main()
