"""Answer extraction and equivalence, shared by every strategy (voting) and by evaluation
(scoring).

- :func:`extract_answer` finds the answer in a response (``\\boxed{}``, "The answer is ...",
  option letters, option text matched back to its letter).
- :func:`normalize_answer` gives the canonical key answers vote by.
- :func:`grade` / :func:`is_equiv` decide correctness: choice letters, numbers with precision,
  absolute or relative tolerance (:class:`NumberRules`), lists and intervals, strings, then math-verify bounded in time.
- :class:`AnswerJudge` / :func:`grade_all`: an optional LLM judge (any engine) for free-form
  answers the rules call wrong; the grade records which path decided.

>>> from slowthink.types import Problem
>>> p = Problem(id="1", question="How many?", answer="72")
>>> grade(extract_answer("48 + 24 = 72. The answer is 72.", p), p).correct
True
"""

from slowthink.grading.compare import (
    METHODS,
    Grade,
    NumberRules,
    gold_text,
    grade,
    is_equiv,
    number_rules_summary,
)
from slowthink.grading.extract import extract_answer, has_answer_cue, is_refusal
from slowthink.grading.judge import AnswerJudge, JudgeVerdict, grade_all, judge_eligible
from slowthink.grading.normalize import normalize_answer
from slowthink.grading.safe_math import VerifyResult, precheck, verify_latex

__all__ = [
    "METHODS",
    "AnswerJudge",
    "JudgeVerdict",
    "grade_all",
    "judge_eligible",
    "Grade",
    "NumberRules",
    "VerifyResult",
    "extract_answer",
    "gold_text",
    "grade",
    "has_answer_cue",
    "is_equiv",
    "is_refusal",
    "normalize_answer",
    "number_rules_summary",
    "precheck",
    "verify_latex",
]
