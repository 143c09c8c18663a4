"""Prompt of the LLM grading judge (MathVerse-style answer-equivalence check)."""

GRADE_SYSTEM = "You check whether a student's final answer to a math question matches the reference answer."

GRADE_USER = (
    "Question:\n{question}\n\n"
    "Reference answer: {gold}\n"
    "Student's final answer: {pred}\n\n"
    "Do the two answers mean the same thing? Ignore wording, units written or omitted, formatting "
    "and equivalent forms (0.5 = 1/2 = 50%); a different value, a missing part or a different option "
    "is not the same. Reply in exactly this format, with nothing else: "
    '"Judgement: 1" (the same) or "Judgement: 0" (different).'
)

GRADE_PREFIX = "Judgement:"

TEMPLATES: dict[str, str] = {
    "grading.judge.system": GRADE_SYSTEM,
    "grading.judge.user": GRADE_USER,
    "grading.judge.prefix": GRADE_PREFIX,
}
