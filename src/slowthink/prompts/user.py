"""The user turn, shared by every format, the judges and the PRM wrappers: the question, plus the
lettered options of a multiple-choice question."""

from __future__ import annotations

from slowthink.types import LETTERS, Problem

USER_QUESTION = "{question}"
USER_QUESTION_CHOICES = "{question}\nChoices:\n{choices}\nAnswer with the option's letter."
CHOICE_LINE = "({letter}) {text}"

TEMPLATES: dict[str, str] = {
    "user.question": USER_QUESTION,
    "user.question_choices": USER_QUESTION_CHOICES,
    "user.choice_line": CHOICE_LINE,
}


def user_prompt(problem: Problem) -> str:
    """The user turn: the question, plus lettered options for multiple choice.

    >>> user_prompt(Problem(id="1", question="Which? ", choices=["red", "blue"]))
    "Which?\\nChoices:\\n(A) red\\n(B) blue\\nAnswer with the option's letter."
    """
    if problem.choices:
        # MATH-V style: the options are drawn in the image, choices are the bare letters.
        if all(c.strip().upper() == LETTERS[i] for i, c in enumerate(problem.choices)):
            lines = ", ".join(LETTERS[: len(problem.choices)])
        else:
            lines = "\n".join(
                CHOICE_LINE.format(letter=LETTERS[i], text=c) for i, c in enumerate(problem.choices)
            )
        return USER_QUESTION_CHOICES.format(question=problem.question.strip(), choices=lines)
    return USER_QUESTION.format(question=problem.question.strip())
