"""Find the answer in a model's answer span or whole response.

Priority: the last well-formed ``\\boxed{...}``; else the text after the last answer cue
(``the final answer is:``, ``The answer is``, ``Answer:``, ``####``), cut at the end of its
sentence; else the whole text when it is short (an answer span like ``72`` or ``(B)``); else,
for multiple choice, the last option letter mentioned, and for other problems the last number.
Multiple-choice answers come back as the option letter (option text is matched back to its
letter). Refusals ("I cannot determine ...") and text without anything answer-like give None.
Regex and string work only: nothing is evaluated.
"""

from __future__ import annotations

import re

from slowthink.grading._latex import last_boxed, strip_wrappers
from slowthink.grading.choices import (
    choice_key,
    contained_option,
    effective_choices,
    is_choice_problem,
    leading_option,
    match_choice,
)
from slowthink.grading.numeric import parse_number
from slowthink.prompts import STAGES
from slowthink.types import LETTERS, Problem

MAX_RESPONSE_CHARS = 50_000
"""Only the last this many characters of a runaway response are searched."""
MAX_CANDIDATE_CHARS = 300
"""An answer after a cue is cut to this length."""
SHORT_ANSWER_WORDS = 8
"""A cue-less text of at most this many words (and 3 lines) is taken whole as the answer."""

_MARKER = re.compile(
    r"(?:(?:final|correct|right|best)\s+(?:answer|option|choice|value)(?:\s+letter)?|the\s+answer"
    r"|\banswer(?:\s+to\s+(?:the|this)\s+question)?)"
    r"\s*(?:\*\*)?\s*(?:is|would\s+be|will\s+be|should\s+be|=|:|：)(?![A-Za-z])\s*(?:\*\*)?\s*:?"
    r"|####",
    re.IGNORECASE,
)
_TAG = re.compile(rf"</?\s*(?:{'|'.join(s.upper() for s in STAGES)}|answer|think)\s*>", re.IGNORECASE)
_STOP_CLAUSE = re.compile(
    r"\s+(?:because|since|as\s+shown|which\s+(?:is|means)|therefore|hence|thus)\b|\s+\((?:since|because)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(?:cannot|can\s*not|can't|unable\s+to|impossible\s+to|not\s+possible\s+to)\s+(?:be\s+)?"
    r"(?:determined?|answer(?:ed)?|solved?|tell|calculated?|computed?|found|find|know|say|decide|provided?)\b"
    r"|\bnot\s+enough\s+(?:information|info|data)\b|\binsufficient\s+(?:information|data)\b"
    r"|\bi\s+(?:do\s+not|don't)\s+know\b|\bno\s+(?:valid\s+|correct\s+)?answer\b"
    r"|\b(?:undeterminable|indeterminable|unanswerable)\b",
    re.IGNORECASE,
)
_CONTINUATION = re.compile(r"(?<=\S)\s*\n\s*(?:Question|Problem)\s*\d*\s*:")
"""A few-shot model that goes on to write a new ``Question:`` has answered: what follows is
another problem's (MathVista's 2-shot outputs do this)."""
_NON_ANSWER = re.compile(r"unknown|n/?a|not\s+sure|unsure|unclear|no\s+idea", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"(?<![\w.^/])-?\d[\d,]*(?:\.\d+)?(?![\w^/])")
_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_MATHY = re.compile(r"[\\^{}()\[\]/*+=<>]")
_REASONING_OPENERS = frozenset(
    {
        "let", "let's", "first", "firstly", "step", "we", "i", "i'm", "to", "okay", "ok", "hmm", "well",
        "now", "next", "since", "because", "given", "in", "this", "looking", "consider", "assume",
        "suppose", "note",
    }
)  # fmt: skip
_MC_SCANS = (  # where a cue-less response names its option; the last mention wins
    re.compile(r"\(([A-Z])\)"),  # (C)
    re.compile(r"\b(?:option|choice)(?:\s*:\s*|\s+|(?=\())\(?([A-Za-z])\)?(?![A-Za-z0-9])", re.IGNORECASE),
    re.compile(r"(?:^|\n)[ \t]*([A-Z])[.):][^\n]*\s*$"),  # the last line starts 'C. ...'
    re.compile(r"(?:^|[\s:*])([A-Z])[.)*]*\s*$"),  # the text ends with a lone letter
)


def _region(text: str) -> str:
    """The LLaVA-CoT conclusion when there is one, else the whole (tail of the) text."""
    upper = text.upper()
    start = upper.rfind("<CONCLUSION>")
    if start < 0:
        return text
    end = upper.find("</CONCLUSION>", start)
    inner = text[start + len("<CONCLUSION>") : end if end >= 0 else len(text)]
    return inner if inner.strip() else text


def _first_sentence(rest: str) -> str:
    """The answer after a cue: its first non-empty line, cut at the end of the sentence."""
    line = next((ln for ln in rest.split("\n") if ln.strip()), "")[: MAX_CANDIDATE_CHARS * 2]
    count_dollars = line.count("$") % 2 == 0  # an odd count means currency, not math mode
    depth, in_math = 0, False
    for i, ch in enumerate(line):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "$" and count_dollars:
            in_math = not in_math
        elif ch in ".!?。" and depth <= 0 and not in_math:
            nxt = line[i + 1 : i + 2]
            quote = bool(nxt) and nxt in "\"'”’"  # 'is "A." The ...': the sentence ends after the quote
            after = line[i + 2 : i + 3] if quote else nxt
            abbreviation = ch == "." and i >= 2 and line[i - 1].isalpha() and line[i - 2] == "."  # S.A., e.g.
            if (not after or after.isspace()) and not abbreviation:
                line = line[: i + 2] if quote else line[:i]
                break
    m = _STOP_CLAUSE.search(line)
    if m:
        line = line[: m.start()]
    return line[:MAX_CANDIDATE_CHARS].strip()


def _cue_candidate(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    last = None
    for last in _MARKER.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    cand = _first_sentence(text[last.end() :])
    inner = last_boxed(cand)
    return inner if inner is not None else cand


def has_answer_cue(text: str) -> bool:
    """Whether ``text`` holds an answer cue (``The answer is``, ``Answer:``, ``####``,
    ``\\boxed{}``, ``<CONCLUSION>``), i.e. is a response to extract from rather than an answer.

    >>> has_answer_cue("So the answer is 5."), has_answer_cue("\\\\boxed{5}"), has_answer_cue("5")
    (True, True, False)
    """
    return (
        "\\boxed" in text
        or "\\fbox" in text
        or "<CONCLUSION>" in text.upper()
        or _MARKER.search(text) is not None
    )


def is_refusal(text: str) -> bool:
    """Whether ``text`` declines to answer ("cannot be determined", "not enough information").

    >>> is_refusal("I cannot determine the answer from the image."), is_refusal("Unknown."), is_refusal("5")
    (True, True, False)
    """
    return bool(_REFUSAL.search(text)) or bool(_NON_ANSWER.fullmatch(text.strip().rstrip(".!")))


def _clean(cand: str) -> str:
    cand = _TAG.sub(" ", cand).strip().strip("*")
    return strip_wrappers(cand)


def _refine_plain(cand: str, problem: Problem | None) -> str:
    """``probably 5 apples`` -> ``5``: a phrase of words holding exactly one number is that
    number (``N 34° W`` and ``212°T`` stay as they are)."""
    if parse_number(cand) is not None or _MATHY.search(cand):
        return cand
    words = cand.split()
    if len(words) < 2 or not any(len(w) >= 3 and w.isalpha() for w in words):
        return cand
    tokens = _NUMBER_TOKEN.findall(cand)
    if len(tokens) > 1 and re.match(r"-?\d[\d,]*(?:\.\d+)?(?:,|\s+(?:as|because|since)\b)", cand):
        return tokens[0].rstrip(",")  # "2, as there are two stores where ... less than 5 units"
    number_type = problem is not None and problem.answer_type == "number"
    if len(tokens) == 1 or (number_type and tokens):
        return tokens[-1]
    return cand


def _looks_like_answer(text: str) -> bool:
    """Whether a short cue-less text reads as an answer (``72``, ``Yes``, ``New York``) rather than
    the start of reasoning (``Let me think.``)."""
    words = text.split()
    if not words:
        return False
    if any(ch.isdigit() for ch in text) or _MATHY.search(text):
        return True
    if words[0].lower().strip(",:") in _REASONING_OPENERS:
        return False
    return len(words) <= 2 or text.rstrip()[-1] not in ".!?:"


def _scan_letter(text: str, n: int | None) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in _MC_SCANS:
        for m in pattern.finditer(text):
            letter = m.group(1).upper()
            if (n is None or LETTERS.index(letter) < n) and (best is None or m.start(1) > best[0]):
                best = (m.start(1), letter)
    return best[1] if best else None


_OPTION_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])\))\s*\S")


def _ends_with_option_list(text: str) -> bool:
    """Whether the text ends with two or more option lines (``(C) yes`` / ``D) no``): a model
    that echoes or invents an option list has chosen none."""
    lines = [ln for ln in text.strip().split("\n")[-2:] if ln.strip()]
    return len(lines) == 2 and all(_OPTION_LINE.match(ln) for ln in lines)


def _last_sentence_option(region: str, choices: list[str]) -> str | None:
    """For a cue-less response naming no letter: the option it opens with as a whole word
    (answer first: ``No, Chartreuse is not ...``), else the one option its last sentence holds
    (``... would most likely decrease.``)."""
    text = _clean(region)
    hit = leading_option(text, choices)
    if hit is None and text:
        last = re.split(r"(?<=[.!?])\s+", text.strip().split("\n")[-1])[-1]
        hit = contained_option(choice_key(last), choices)
    return hit


def _last_number(text: str) -> str | None:
    last = None
    for last in _LAST_NUMBER.finditer(text):  # noqa: B007 - we want the last match
        pass
    return last.group(0).rstrip(",") if last else None


def extract_answer(text: str | None, problem: Problem | None = None) -> str | None:
    """The answer in ``text`` (an answer span or a whole response), or None.

    For multiple-choice problems (``problem.choices``, an inline ``Choices:`` block, or
    ``answer_type='choice'``) the option letter; otherwise the answer string as written, with
    ``$...$``/``\\boxed{}`` unwrapped and trailing sentence punctuation stripped.

    >>> extract_answer("So the total is 18. The answer is $18.00."), extract_answer("The answer is $x=3$.")
    ('$18.00', 'x=3')
    >>> extract_answer("Step 2: ... \\\\boxed{\\\\frac{1}{2}}"), extract_answer("#### 1,000")
    ('\\\\frac{1}{2}', '1,000')
    >>> p = Problem(id="1", question="q", choices=["10 cm", "12 cm"])
    >>> extract_answer("The answer is B: 12 cm.", p), extract_answer("option (a)", p), extract_answer("12 cm", p)
    ('B', 'A', 'B')
    >>> extract_answer("I cannot determine the length from the figure."), extract_answer("Let me think.")
    (None, None)
    """
    if not text or not text.strip():
        return None
    text = _CONTINUATION.split(text, maxsplit=1)[0] if _CONTINUATION.search(text) else text
    text = text[-MAX_RESPONSE_CHARS:]
    region = _region(text)
    choice = is_choice_problem(problem)
    choices = effective_choices(problem) if choice else None
    n = len(choices) if choices else None

    cand = _cue_candidate(region)
    if cand is None and choice and _ends_with_option_list(region):
        return None  # '(C) yes\n(D) no': the options echoed, none chosen
    if cand is None:
        stripped = _clean(region)
        lines = [ln for ln in stripped.split("\n") if ln.strip()]
        if stripped and len(lines) <= 3 and len(stripped.split()) <= SHORT_ANSWER_WORDS:
            whole = " ".join(lines)
            if choice:
                letter = match_choice(whole, choices)
                if letter is not None:
                    return letter
            elif _looks_like_answer(_TAG.sub(" ", region).strip()):
                cand = whole
    if cand is not None:
        cand = _clean(cand)
        if cand:
            if choice:
                letter = match_choice(cand, choices) or _scan_letter(cand, n)  # 'therefore (B)'
                if letter is not None:
                    return letter
            if is_refusal(cand):
                return None
            return cand if choice else _refine_plain(cand, problem)
    tail = region[-1000:]
    if is_refusal(tail[-300:]):
        return None
    if choice:
        letter = _scan_letter(tail, n) or (_last_sentence_option(region, choices) if choices else None)
        if letter is not None:  # an explicit letter, else 'No, there are ...' / '... is Tokyo.'
            return letter
        number = _last_number(tail)
        return match_choice(number, choices) if number is not None and choices else None
    return _last_number(region)
