"""Field mappings: which column of a user's dataset holds the question, the answer, ...

A mapping is written as a CLI string, a dict, inline YAML, or a YAML/JSON file::

    "question=problem,answer=solution"              # CLI string
    "question=q,answer=a,choices=A|B|C|D"           # options spread over columns A..D
    {"question": "problem", "category": "metadata.subject", "level": "level"}
    "fields.yaml"                                   # a mapping, or a file with a `fields:` key

Keys ``question``, ``answer``, ``choices``, ``image`` (alias ``images``), ``id``, ``category``,
``answer_type`` (words such as ``float``, ``integer``, ``multiple choice``, ``free form``),
``precision`` (decimals), ``abs_tol`` and ``rel_tol`` (per-problem number tolerances) fill the
:class:`~slowthink.types.Problem`; any other key copies
that source field into ``meta``. Source names may be dotted to reach nested values
(``metadata.category``). Keys left out are guessed from common names (``question``/``problem``/
``query``..., ``answer``/``final_answer``..., ``choices``/``options`` or columns ``A``, ``B``...).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from slowthink.benchmarks.choices import LETTERS
from slowthink.options import parse_kv
from slowthink.types import SlowthinkError

CORE_FIELDS: tuple[str, ...] = (
    "question",
    "answer",
    "choices",
    "image",
    "id",
    "category",
    "answer_type",
    "precision",
    "abs_tol",
    "rel_tol",
)
_ALIASES = {"images": "image", "options": "choices", "image_path": "image"}

# Names tried, in order, for a field the mapping leaves out.
AUTO_NAMES: dict[str, tuple[str, ...]] = {
    "question": ("question", "problem", "query", "prompt", "input", "instruction", "Question", "Problem"),
    "answer": (
        "answer",
        "final_answer",
        "gold",
        "gt_answer",
        "ground_truth",
        "target",
        "label",
        "output",
        "Answer",
    ),
    "choices": ("choices", "options", "Choices", "Options"),
    "image": ("image", "images", "image_path", "img", "image_file", "figure"),
    "id": (
        "id",
        "pid",
        "unique_id",
        "problem_id",
        "qid",
        "question_id",
        "sample_index",
        "index",
        "idx",
        "uid",
    ),
    "category": ("category", "subject", "type", "task", "l2-category", "l2_category"),
    "answer_type": ("answer_type",),
    "precision": ("precision",),
    "abs_tol": ("abs_tol",),
    "rel_tol": ("rel_tol",),
}
# Well-known fields copied into meta when present and not mapped elsewhere.
AUTO_META: tuple[str, ...] = (
    "level",
    "difficulty",
    "subject",
    "subfield",
    "split",
    "source",
    "grade",
    "skills",
    "unit",
    "l2-category",
    "l2_category",
    "question_type",
)


@dataclass
class FieldMap:
    """Where each :class:`~slowthink.types.Problem` field comes from (source field names).

    ``choices`` is one field holding the option list, or a list of fields holding one option
    each (VLMEvalKit columns ``A``, ``B``, ...). ``meta`` maps meta keys to source fields.

    Example:
        >>> FieldMap.parse("question=problem,answer=solution,level=level")
        FieldMap(question='problem', answer='solution', choices=None, image=None, id=None, category=None, answer_type=None, precision=None, abs_tol=None, rel_tol=None, meta={'level': 'level'})
        >>> FieldMap.parse({"question": "q", "choices": "A|B|C"}).choices
        ['A', 'B', 'C']
    """

    question: str | None = None
    answer: str | None = None
    choices: str | list[str] | None = None
    image: str | None = None
    id: str | None = None
    category: str | None = None
    answer_type: str | None = None
    precision: str | None = None
    abs_tol: str | None = None
    rel_tol: str | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: FieldMap | Mapping[str, Any] | str | Path | None) -> FieldMap:
        """Build a mapping from a CLI string, dict, inline YAML or YAML/JSON file (see module doc)."""
        if spec is None:
            return cls()
        if isinstance(spec, FieldMap):
            return spec
        if isinstance(spec, Path) or (isinstance(spec, str) and _is_mapping_file(spec)):
            return cls.parse(_load_mapping_file(Path(spec)))
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("{"):
                try:
                    loaded = yaml.safe_load(text)
                except yaml.YAMLError as e:
                    raise SlowthinkError(f"bad field mapping '{text}': {str(e).splitlines()[0]}") from None
                return cls.parse(loaded)
            return cls.parse(parse_kv(text, typed=False, what="field mapping"))
        if not isinstance(spec, Mapping):
            raise SlowthinkError(
                f"a field mapping must be 'key=field,...', a dict or a YAML file, got {spec!r}"
            )
        fm = cls()
        for raw_key, value in spec.items():
            key = _ALIASES.get(str(raw_key), str(raw_key))
            if key == "choices":
                fm.choices = _choices_spec(value)
                continue
            if not isinstance(value, str) or not value.strip():
                raise SlowthinkError(f"field mapping '{raw_key}' needs a source field name, got {value!r}")
            if key in CORE_FIELDS:
                setattr(fm, key, value.strip())
            else:
                fm.meta[key] = value.strip()
        return fm

    def resolve(self, available: Collection[str], *, where: str, require_answer: bool = True) -> FieldMap:
        """Check the mapped names against the fields the data has, and fill in guesses.

        Raises one clear :class:`SlowthinkError` naming an unknown field and listing the
        available ones, or saying which field could not be found.
        """
        avail = set(available)
        listing = ", ".join(sorted(avail)) or "(none)"

        def known(name: str) -> bool:
            return name in avail or name.split(".", 1)[0] in avail

        for key in CORE_FIELDS:
            value = getattr(self, key)
            names = value if isinstance(value, list) else [value] if value else []
            for name in names:
                if not known(name):
                    raise SlowthinkError(
                        f"{where}: field '{name}' (mapped to {key}) is not in the data; available fields: {listing}"
                    )
        for key, name in self.meta.items():
            if not known(name):
                raise SlowthinkError(
                    f"{where}: field '{name}' (mapped to meta '{key}') is not in the data; available fields: {listing}"
                )
        out = replace(self, meta=dict(self.meta))
        used = {n for k in CORE_FIELDS for n in _names(getattr(out, k))}
        for key in CORE_FIELDS:
            if getattr(out, key) is not None:
                continue
            guess = next((n for n in AUTO_NAMES[key] if n in avail and n not in used), None)
            if guess is None and key == "choices":
                letters = [c for c in LETTERS if c in avail]
                if len(letters) >= 2 and letters == list(LETTERS[: len(letters)]):
                    out.choices = letters
                    used.update(letters)
                continue
            if guess is not None:
                setattr(out, key, guess)
                used.add(guess)
        for name in AUTO_META:
            if name in avail and name not in out.meta:
                out.meta[name] = name
        if out.question is None and out.image is None:
            raise SlowthinkError(
                f"{where}: no question field found: map one, e.g. fields='question=FIELD'; available fields: {listing}"
            )
        if out.answer is None and require_answer:
            raise SlowthinkError(
                f"{where}: no answer field found: map one, e.g. fields='answer=FIELD' (or pass "
                f"require_answer=False for unlabeled data); available fields: {listing}"
            )
        return out


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _choices_spec(value: Any) -> str | list[str]:
    if isinstance(value, str) and "|" in value:
        value = [v for v in value.split("|")]
    if isinstance(value, (list, tuple)):
        names = [str(v).strip() for v in value]
        if len(names) < 2 or not all(names):
            raise SlowthinkError(
                f"field mapping 'choices' needs one field or two or more fields, got {value!r}"
            )
        return names
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise SlowthinkError(f"field mapping 'choices' needs a source field name, got {value!r}")


def _is_mapping_file(spec: str) -> bool:
    s = spec.strip()
    return "=" not in s and not s.startswith("{") and Path(s).suffix.lower() in (".yaml", ".yml", ".json")


def _load_mapping_file(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise SlowthinkError(f"field mapping file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise SlowthinkError(f"cannot read field mapping file {path}: {str(e).splitlines()[0]}") from None
    if isinstance(data, Mapping) and isinstance(data.get("fields"), Mapping):
        data = data["fields"]
    if not isinstance(data, Mapping):
        raise SlowthinkError(
            f"field mapping file {path} must hold a mapping (question: FIELD, answer: FIELD, ...)"
        )
    return data
