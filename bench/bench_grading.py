"""Grading agreement on the shared benchmark data. Prints one JSON object.

For every problem of GSM8K test, MathVista testmini, MathVerse testmini (text only) and MATH-V
testmini, the grader is applied to: the gold answer itself; answers that the benchmark's official
rules count as equal (``(B)``, ``Option B``, ``B.``, the option text, ``1,000``, ``$12``, ``12.00``,
``The answer is 12.``, ``\\boxed{12}``); and wrong answers (another option letter, the gold number
plus one). Agreement = correct on the first two kinds, wrong on the last. ``notes`` counts why
math-verify could not decide (pre-check rejections, timeouts); ``slowest_grade_s`` is the longest
single grade (math-verify worker warm).

    .venv/bin/python bench/bench_grading.py
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from fractions import Fraction

from slowthink.benchmarks import load_benchmark
from slowthink.grading import grade
from slowthink.grading.safe_math import start_worker
from slowthink.types import Problem

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _number(s: str) -> Fraction | None:
    try:
        return Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def variants(p: Problem) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(equivalent answers, wrong answers), each as (kind, text)."""
    gold = p.answer or ""
    same: list[tuple[str, str]] = [
        ("gold", gold),
        ("sentence", f"The answer is {gold}."),
        ("boxed", f"\\boxed{{{gold}}}"),
    ]
    wrong: list[tuple[str, str]] = []
    if p.choices:
        letter = p.meta.get("answer_letter") or (gold if len(gold) == 1 and gold in LETTERS else None)
        if not isinstance(letter, str):  # several right options (MathVerse "C, D"): only the gold forms
            return same, wrong
        if letter is None and gold in p.choices:
            letter = LETTERS[p.choices.index(gold)]
        if letter:
            same += [("(L)", f"({letter})"), ("L.", f"{letter}."), ("Option L", f"Option {letter}")]
            idx = LETTERS.index(letter)
            if not p.meta.get("choices_in_image") and idx < len(p.choices):
                same.append(("option text", p.choices[idx]))
            other = LETTERS[(idx + 1) % len(p.choices)]
            if p.choices[LETTERS.index(other)] != p.choices[idx]:  # MathVista 781: options 18, 18
                wrong += [("other letter", other), ("(other)", f"({other})")]
        return same, wrong
    num = _number(gold)
    if num is not None:
        if num.denominator == 1 and abs(num) >= 1000:
            same.append(("1,000", f"{int(num):,}"))
        if num.denominator == 1:
            same.append(("x.00", f"{int(num)}.00"))
            if p.meta.get("benchmark") == "gsm8k" and num >= 0:
                same.append(("$x", f"${int(num):,}"))
        wrong.append(("gold+1", str(num + 1) if num.denominator != 1 else str(int(num) + 1)))
    else:
        wrong.append(("nonsense", "banana"))
    return same, wrong


def main() -> None:
    start_worker()  # its start is not part of any grade's time
    sets = {
        "gsm8k": load_benchmark("gsm8k"),
        "mathvista": load_benchmark("mathvista", allow_missing_images=True),
        "mathverse": load_benchmark("mathverse"),
        "math-v": load_benchmark("math-v"),
    }
    report: dict = {}
    t0 = time.perf_counter()
    for name, loaded in sets.items():
        counts: Counter[str] = Counter()
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        disagreements: list[dict] = []
        notes: Counter[str] = Counter()
        slowest = 0.0
        for p in loaded.problems:
            same, wrong = variants(p)
            for expect, items in ((True, same), (False, wrong)):
                for kind, text in items:
                    t = time.perf_counter()
                    g = grade(text, p)
                    slowest = max(slowest, time.perf_counter() - t)
                    if g.note:
                        notes[g.note] += 1
                    ok = g.correct == expect
                    counts["agree" if ok else "disagree"] += 1
                    by_kind[kind]["agree" if ok else "disagree"] += 1
                    if not ok and len(disagreements) < 8:
                        disagreements.append(
                            {
                                "id": p.id,
                                "gold": p.answer,
                                "answer": text,
                                "expected": expect,
                                "method": g.method,
                                "pred_norm": g.pred_norm,
                                "gold_norm": g.gold_norm,
                            }
                        )
        total = counts["agree"] + counts["disagree"]
        report[name] = {
            "problems": len(loaded.problems),
            "cases": total,
            "agree": counts["agree"],
            "agreement": round(counts["agree"] / total, 4),
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "notes": dict(notes.most_common()),
            "slowest_grade_s": round(slowest, 3),
            "disagreement_examples": disagreements,
        }
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
