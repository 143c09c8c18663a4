"""Yes/No answers read as VLMEvalKit reads them (HallusionBench, MME, POPE: ``YOrN_Extraction``).

The prediction is lower-cased and its punctuation handled as VLMEvalKit's ``process_punctuation``
(the VQA-eval rule: a punctuation mark next to a space, or any mark when the text holds a
thousands comma, is deleted, otherwise it becomes a space; periods not next to a digit are
deleted); then ``Yes`` when the words hold ``yes`` and not ``no``, ``No`` for the reverse,
otherwise ``Unknown``. VLMEvalKit may then ask an LLM about the ``Unknown`` ones; by default
(``exact_matching``) it does not, and neither does slowthink: ``Unknown`` is wrong.
"""

from __future__ import annotations

import re

YES, NO, UNKNOWN = "Yes", "No", "Unknown"

_PUNCT = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
_COMMA_NUMBER = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def process_punctuation(text: str) -> str:
    """Punctuation handled as the VQA evaluation (and VLMEvalKit) does.

    >>> process_punctuation("yes, it is (mostly)."), process_punctuation("no-entry sign")
    ('yes it is mostly ', 'no entry sign')
    """
    out = text
    glued = _COMMA_NUMBER.search(text) is not None
    for p in _PUNCT:
        if p + " " in text or " " + p in text or glued:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out)


def yes_no(prediction: str | None) -> str:
    """``Yes``, ``No`` or ``Unknown`` for a free-text prediction.

    >>> [yes_no(t) for t in ["Yes.", "No, the bars are equal.", "yes and no", "Maybe", None]]
    ['Yes', 'No', 'Unknown', 'Unknown', 'Unknown']
    """
    if not prediction:
        return UNKNOWN
    words = process_punctuation(prediction.lower()).split()
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return YES
    if has_no and not has_yes:
        return NO
    return UNKNOWN
