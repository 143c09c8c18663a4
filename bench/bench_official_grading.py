"""Agreement of slowthink's grading with MathVista's OFFICIAL per-item verdicts. Prints JSON.

MathVista's public repository (github.com/lupantech/MathVista) ships real model outputs with the
official verdict of each item (``results/*/output_*.json``: ``response``, the GPT-4 ``extraction``,
``true_false``). Only that data is read here, never the repository's code. Each item becomes a
:class:`~slowthink.types.Problem` through slowthink's own ``mathvista`` loader (choices, answer
type, precision as in testmini.json), then is graded twice:

* ``response``: the model's raw response, through slowthink's extraction and grading (what
  ``slowthink eval`` does with a response);
* ``extraction``: MathVista's extracted answer, through slowthink's grading only (isolates the
  comparison rules from the extraction).

Every disagreement with ``true_false`` is put in a class (see :func:`classify`), with counts and
examples. The files are read from a snapshot of the repository without copying it anywhere::

    .venv/bin/python bench/bench_official_grading.py --repo /path/to/MathVista   # a clone or a bare git dir
    .venv/bin/python bench/bench_official_grading.py --repo DIR --out bench/results/official_grading_mathvista.json

Synthetic baselines (``results/random``, ``test_random``, the leaderboard templates) are left out:
they are not model outputs. Program-of-thought outputs (``*_code*``) are graded on the extraction
only: their ``response`` is a program, and MathVista's extraction is the program's printed output.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slowthink.benchmarks import load_benchmark
from slowthink.grading import extract_answer, grade, is_refusal
from slowthink.grading.numeric import parse_number
from slowthink.types import Problem

SKIP_DIRS = ("random", "test_random", "leaderboad_submission_template")
EXAMPLES = 3
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --------------------------------------------------------------------------- reading the snapshot


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def output_files(repo: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, items)`` for each model-output file of the snapshot (a work tree or a git dir)."""
    if (repo / "results").is_dir():
        for path in sorted((repo / "results").glob("*/output_*.json")):
            if path.parent.name not in SKIP_DIRS:
                yield str(path.relative_to(repo)), json.loads(path.read_text(encoding="utf-8"))
        return
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    for name in sorted(_git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", "results/").split()):
        parts = name.split("/")
        if len(parts) != 3 or parts[1] in SKIP_DIRS or not re.fullmatch(r"output_.*\.json", parts[2]):
            continue
        try:
            yield name, json.loads(_git(git_dir, "show", f"HEAD:{name}"))
        except (subprocess.CalledProcessError, json.JSONDecodeError) as e:
            print(f"skip {name}: {type(e).__name__}", file=sys.stderr)  # an LFS pointer or missing blob


def problems_of(items: dict[str, Any]) -> dict[str, Problem]:
    """The items as slowthink problems, through the ``mathvista`` loader (text only)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.json"
        keep = ("pid", "question", "choices", "answer", "answer_type", "precision", "question_type", "unit")
        path.write_text(
            json.dumps({k: {f: v.get(f) for f in keep} for k, v in items.items()}), encoding="utf-8"
        )
        loaded = load_benchmark("mathvista", path, text_only=True)
    return {p.id: p for p in loaded.problems}


# --------------------------------------------------------------------------- classes of disagreement


_NO_ANSWER = re.compile(
    r"^(?:n/?a|none|null|nothing|unknown|not (?:provided|applicable|given)|no answer.*)$"
    r"|does not (?:provide|give|contain|show|match)|doesn't|missing|mistake|insufficient|not enough"
    r"|cannot|can't|unable|sorry|no (?:correct |valid )?(?:answer|option|choice)",
    re.IGNORECASE,
)


def _float_text(s: str) -> float | None:
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def _side(ours: bool) -> str:
    return "official correct, slowthink wrong" if ours is False else "official wrong, slowthink correct"


def classify_rule(item: dict[str, Any], ours: bool) -> str:
    """Why slowthink's verdict on MathVista's OWN extraction differs from ``true_false``: the
    comparison rules differ (the extraction is the same on both sides)."""
    ext = str(item.get("extraction") or "").strip()
    gold = str(item.get("answer"))
    qtype, atype, side = item.get("question_type"), item.get("answer_type"), _side(ours)
    if not ext:
        return f"empty extraction ({side})"
    if qtype == "multi_choice":
        choices = [str(c) for c in item.get("choices") or []]
        letters = list(LETTERS[: len(choices)])
        if ext in letters or ext in choices:
            return f"multi_choice: extraction is a letter or option text ({side})"
        if _NO_ANSWER.search(ext) or is_refusal(ext):
            return f"multi_choice: extraction is no answer (N/A, None, a refusal), official maps it to the nearest option ({side})"
        if re.fullmatch(r"\(?[A-Za-z]\)?[.:]?", ext):
            return f"multi_choice: a letter beyond the options ({side})"
        if re.fullmatch(r"[A-Za-z](?:\s*(?:,|and|&)\s*[A-Za-z])+", ext):
            return f"multi_choice: several letters ({side})"
        if parse_number(ext) is not None:
            return f"multi_choice: a number that is no option's text ({side})"
        return f"multi_choice: other text that is no option ({side})"
    value = _float_text(ext)
    if atype == "integer":
        if value is not None and value == int(gold):
            return f"integer: the gold written as a decimal, e.g. 3.0 for 3 ({side})"
        if value is not None and int(value) == int(gold):
            return f"integer: a decimal whose integer part is the gold, e.g. 1.5 for 1 ({side})"
        if value is None and parse_number(ext) is not None:
            return f"integer: number with unit/comma/percent ({side})"
        return f"integer: other ({side})"
    if atype == "float":
        if value is None and parse_number(ext) is not None:
            return f"float: number with unit/comma/percent ({side})"
        return f"float: other ({side})"
    return f"{atype}: other ({side})"


def classify_extraction(ours_ext: str | None, item: dict[str, Any], problem: Problem, ours: bool) -> str:
    """Why slowthink's verdict on the RESPONSE differs while its verdict on MathVista's extraction
    agrees with ``true_false``: the two extractions differ."""
    side = _side(ours)
    response = str(item.get("response") or "")
    official = str(item.get("extraction") or "").strip()
    if not response.strip():
        return f"extraction: the response is empty, MathVista's extraction still names an answer ({side})"
    if problem.choices and len(re.findall(r"(?:^|\s)\(?[A-Z]\)\s*\S", response)) >= len(problem.choices):
        return f"extraction: the response lists (echoes) the options ({side})"
    if ours_ext is None:
        if is_refusal(response[-300:]):
            return f"extraction: the response declines; ours: no answer ({side})"
        return f"extraction: ours found no answer, MathVista's GPT-4 did ({side})"
    if not official:
        return f"extraction: MathVista's GPT-4 found no answer, ours did ({side})"
    if problem.choices:
        return f"extraction: a different option ({side})"
    return f"extraction: a different value ({side})"


# --------------------------------------------------------------------------- the bench


def _example(name: str, pid: str, item: dict[str, Any], ours_ext: str | None, g) -> dict[str, Any]:
    resp = str(item.get("response") or "")
    return {
        "file": name,
        "pid": pid,
        "question_type": item.get("question_type"),
        "answer_type": item.get("answer_type"),
        "precision": item.get("precision"),
        "choices": item.get("choices"),
        "gold": item.get("answer"),
        "official_extraction": item.get("extraction"),
        "official_true_false": item.get("true_false"),
        "ours_extraction": ours_ext,
        "ours_correct": g.correct,
        "ours_method": g.method,
        "response_tail": resp[-300:],
    }


def _report(counter: Counter[str], examples: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"class": k, "count": v, "examples": examples[k]} for k, v in counter.most_common()]


def run(repo: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    per_file: dict[str, dict[str, Any]] = {}
    tot = Counter()
    resp_classes: Counter[str] = Counter()
    ext_classes: Counter[str] = Counter()
    resp_examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ext_examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, items in output_files(repo):
        problems = problems_of(items)
        code = "_code" in name
        f = Counter()
        for pid, item in items.items():
            problem = problems.get(str(item.get("pid", pid)))
            official = item.get("true_false")
            if problem is None or not isinstance(official, bool):
                f["not_loaded"] += 1
                continue
            f["items"] += 1
            official_ext = item.get("extraction")
            ge = grade(str(official_ext) if official_ext not in (None, "") else None, problem)
            f["official_correct"] += official
            f["extraction_correct"] += ge.correct
            f["extraction_agree"] += ge.correct == official
            if ge.correct != official:
                k = classify_rule(item, ge.correct)
                ext_classes[k] += 1
                if len(ext_examples[k]) < EXAMPLES:
                    ext_examples[k].append(_example(name, pid, item, official_ext, ge))
            if code:
                continue
            ours_ext = extract_answer(str(item.get("response") or ""), problem)
            gr = grade(ours_ext, problem)
            f["response_items"] += 1
            f["response_official_correct"] += official
            f["response_correct"] += gr.correct
            f["response_agree"] += gr.correct == official
            if gr.correct != official:
                k = (
                    classify_rule(item, ge.correct)
                    if ge.correct != official
                    else classify_extraction(ours_ext, item, problem, gr.correct)
                )
                k = k if k.startswith("extraction") else f"rules (same as on the extraction): {k}"
                resp_classes[k] += 1
                if len(resp_examples[k]) < EXAMPLES:
                    resp_examples[k].append(_example(name, pid, item, ours_ext, gr))
        per_file[name] = dict(f)
        tot.update(f)
        print(f"{name}: {dict(f)}", file=sys.stderr)

    def rate(a: str, b: str) -> float | None:
        return round(tot[a] / tot[b], 4) if tot[b] else None

    return {
        "source": "lupantech/MathVista results/*/output_*.json (data only), official verdict: true_false",
        "files": len(per_file),
        "items": tot["items"],
        "extraction": {
            "what": "MathVista's GPT-4 extraction graded by slowthink's rules",
            "agreement": rate("extraction_agree", "items"),
            "agree": tot["extraction_agree"],
            "official_accuracy": rate("official_correct", "items"),
            "slowthink_accuracy": rate("extraction_correct", "items"),
            "disagreements": _report(ext_classes, ext_examples),
        },
        "response": {
            "what": "the model's raw response through slowthink's extraction and rules (no *_code files)",
            "items": tot["response_items"],
            "agreement": rate("response_agree", "response_items"),
            "agree": tot["response_agree"],
            "official_accuracy": rate("response_official_correct", "response_items"),
            "slowthink_accuracy": rate("response_correct", "response_items"),
            "disagreements": _report(resp_classes, resp_examples),
        },
        "per_file": per_file,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, type=Path, help="MathVista snapshot: a clone or a bare git dir")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    result = run(args.repo.expanduser())
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
