"""Benchmarks by name, and :func:`load_benchmark`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.benchmarks import gsm8k, hallusionbench, mathv, mathverse, mathvista, mmbench, vlmeval
from slowthink.benchmarks.base import Collector, LoadResult, check_tolerance, nothing_usable
from slowthink.benchmarks.files import FORMATS, resolve_path
from slowthink.benchmarks.generic import load_generic
from slowthink.benchmarks.reasoning_gym import load_reasoning_gym
from slowthink.options import scalar
from slowthink.types import SlowthinkError


@dataclass(frozen=True)
class BenchmarkInfo:
    """One registered benchmark.

    ``loader(path, collector, **options)`` fills the collector. ``default_paths`` are tried, in
    order, inside the data folder (``{split}`` is filled from the ``split`` option or
    ``default_split``). ``presets`` are default options (a field mapping for a preset of the
    generic loader). ``task_arg`` names the option that the part after ``:`` in
    ``name:TASK`` goes to; ``needs_file`` is False for generated data.
    """

    name: str
    loader: Callable[..., None]
    description: str
    default_paths: tuple[str, ...] = ()
    default_split: str | None = None
    presets: Mapping[str, Any] = field(default_factory=dict)
    needs_file: bool = True
    task_arg: str | None = None


BENCHMARKS: dict[str, BenchmarkInfo] = {
    info.name: info
    for info in (
        BenchmarkInfo(
            "mathvista",
            mathvista.load_mathvista,
            "MathVista testmini.json (images from images.zip; allow_missing_images=True for text-only)",
            mathvista.DEFAULT_PATHS,
        ),
        BenchmarkInfo(
            "mathverse",
            mathverse.load_mathverse,
            "MathVerse testmini.json / testmini_text_only.json (versions=... to pick problem versions)",
            mathverse.DEFAULT_PATHS,
        ),
        BenchmarkInfo(
            "math-v", mathv.load_mathv, "MATH-Vision testmini.jsonl with images/", mathv.DEFAULT_PATHS
        ),
        BenchmarkInfo(
            "gsm8k",
            gsm8k.load_gsm8k,
            "GSM8K test/train.jsonl (split=test|train)",
            gsm8k.DEFAULT_PATHS,
            "test",
        ),
        BenchmarkInfo(
            "math500",
            load_generic,
            "MATH-500 test.jsonl (problem, answer, subject, level, unique_id)",
            ("math500/test.jsonl", "MATH-500/test.jsonl", "math-500/test.jsonl"),
            presets={
                "fields": {
                    "question": "problem",
                    "answer": "answer",
                    "id": "unique_id",
                    "category": "subject",
                }
            },
        ),
        BenchmarkInfo(
            "mmstar",
            vlmeval.load_vlmeval_tsv,
            "MMStar.tsv from VLMEvalKit (base64 images)",
            vlmeval.DEFAULT_PATHS,
        ),
        BenchmarkInfo(
            "mmbench",
            mmbench.load_mmbench,
            "MMBench_DEV_EN.tsv from VLMEvalKit, with CircularEval copies (circular=auto|off)",
            mmbench.DEFAULT_PATHS,
        ),
        BenchmarkInfo(
            "ai2d",
            vlmeval.load_vlmeval_tsv,
            "AI2D_TEST.tsv from VLMEvalKit (base64 images)",
            vlmeval.AI2D_PATHS,
        ),
        BenchmarkInfo(
            "hallusionbench",
            hallusionbench.load_hallusionbench,
            "HallusionBench.tsv from VLMEvalKit (Yes/No; set/figure/question ids from the index)",
            hallusionbench.DEFAULT_PATHS,
        ),
        BenchmarkInfo(
            "mmvet",
            vlmeval.load_vlmeval_tsv,
            "MMVet.tsv from VLMEvalKit (free-form; scored by the MM-Vet grader in the llava-cot suite)",
            vlmeval.MMVET_PATHS,
        ),
        BenchmarkInfo("vlmeval", vlmeval.load_vlmeval_tsv, "any VLMEvalKit-style TSV with base64 images"),
        BenchmarkInfo(
            "jsonl", load_generic, f"any {'/'.join(FORMATS)} file with a field mapping (fields=...)"
        ),
        BenchmarkInfo(
            "reasoning-gym",
            load_reasoning_gym,
            "reasoning-gym:TASK, generated (size=, seed=, task config); needs slowthink[bench]",
            needs_file=False,
            task_arg="task",
        ),
    )
}
ALIASES: dict[str, str] = {
    "mathv": "math-v",
    "math_v": "math-v",
    "math-vision": "math-v",
    "math-500": "math500",
    "reasoning_gym": "reasoning-gym",
    "rg": "reasoning-gym",
    "tsv": "vlmeval",
    "mmbench_dev_en": "mmbench",
    "ai2d_test": "ai2d",
    "hallusion": "hallusionbench",
    "mm-vet": "mmvet",
    "mm_vet": "mmvet",
    "json": "jsonl",
    "csv": "jsonl",
    "parquet": "jsonl",
    "generic": "jsonl",
}
_CENTRAL_OPTIONS = ("category_by", "abs_tol", "rel_tol", "precision")
#: Grading-rule options every loader takes: they fill the problems that set no value of their own.
RULE_OPTIONS = ("abs_tol", "rel_tol", "precision")


def benchmark_names() -> list[str]:
    return sorted(BENCHMARKS)


def get_benchmark(name: str) -> tuple[BenchmarkInfo, str | None]:
    """``(info, task)`` for ``name`` or ``name:TASK``; unknown names list the valid ones."""
    base, _, task = name.strip().partition(":")
    key = ALIASES.get(base.lower(), base.lower())
    if key not in BENCHMARKS:
        raise SlowthinkError(
            f"unknown benchmark '{name}': choose one of {', '.join(benchmark_names())} "
            "(or 'jsonl' with a path and fields=... for your own data)"
        )
    info = BENCHMARKS[key]
    if task and info.task_arg is None:
        raise SlowthinkError(f"benchmark '{info.name}' takes no ':{task}' suffix")
    if info.task_arg is not None and not task:
        raise SlowthinkError(
            f"benchmark '{info.name}' needs a task: write '{info.name}:TASK' (e.g. {info.name}:chain_sum)"
        )
    return info, task or None


def load_benchmark(
    name: str, path: str | Path | None = None, *, limit: int | None = None, **options: Any
) -> LoadResult:
    """Load a benchmark from local files into :class:`~slowthink.types.Problem` objects.

    Args:
        name: a registered name (see :data:`BENCHMARKS`): ``mathvista``, ``mathverse``, ``math-v``,
            ``gsm8k``, ``math500``, ``mmstar``, ``vlmeval``, ``jsonl`` (any file with ``fields=``),
            ``reasoning-gym:TASK``. A path to an existing data file also works: it is loaded with
            the generic loader.
        path: the data file, or a folder holding it. Default: the benchmark's usual file inside
            ``$SLOWTHINK_DATA``, else inside ``../shared/data`` next to the repository.
        limit: keep at most this many problems (the first ones, in file order).
        options: loader options (see each loader), plus ``category_by=META_KEY`` to set
            ``meta["category"]`` from another meta key (e.g. ``problem_version``), and the
            grading rules of numeric answers for every problem that has none of its own (from a
            mapped field or the benchmark's file): ``abs_tol=0.001`` (``|pred - gold| <= 0.001``),
            ``rel_tol=0.01`` (relative), ``precision=2`` (compare rounded to 2 decimals).

    Returns a :class:`LoadResult` with the problems and the skipped rows counted by reason.
    Raises :class:`SlowthinkError` (one line) for an unknown name or option, a missing or
    unreadable file, or a load with no usable problem.

    Example:
        >>> r = load_benchmark("gsm8k", limit=2)  # doctest: +SKIP
        >>> [p.id for p in r], r.summary()  # doctest: +SKIP
        (['gsm8k-test-0', 'gsm8k-test-1'], 'gsm8k: 2 problems from .../gsm8k/test.jsonl; skipped 0')
    """
    if name not in BENCHMARKS and path is None and _looks_like_file(name):
        name, path = "jsonl", name
    info, task = get_benchmark(name)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise SlowthinkError(f"limit must be a positive integer, got {limit!r}")
    category_by = options.pop("category_by", None)
    rules = _rule_options(options)
    opts = {**info.presets, **options}
    if task is not None and info.task_arg is not None:
        opts[info.task_arg] = task
    _check_options(info, opts)

    label = f"{info.name}:{task}" if task else info.name
    if info.needs_file:
        split = opts.get("split") or info.default_split or ""
        candidates = tuple(p.format(split=split) for p in info.default_paths)
        if path is None and not candidates:
            raise SlowthinkError(f"{label}: needs a path to the data file")
        data_path: Path | None = resolve_path(label, path, candidates)
        source = str(data_path)
    else:
        if path is not None:
            raise SlowthinkError(f"{label}: generates its problems; pass no path")
        data_path, source = None, f"generated ({_describe(opts)})"

    col = Collector(label, limit)
    info.loader(data_path, col, **opts)
    if not col.problems:
        raise nothing_usable(label, source, col.skipped)
    if category_by is not None:
        _recategorize(col, str(category_by))
    for p in col.problems:
        for key, value in rules.items():
            if getattr(p, key) is None:
                setattr(p, key, value)
    return col.result(source)


def _rule_options(options: dict[str, Any]) -> dict[str, Any]:
    """Pop and check ``abs_tol`` / ``rel_tol`` / ``precision`` (one clear error for a bad value)."""
    rules: dict[str, Any] = {}
    for key in RULE_OPTIONS:
        value = options.pop(key, None)
        if value is None:
            continue
        if key == "precision":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SlowthinkError(
                    f"precision must be a whole number of decimals >= 0, got {value!r}; e.g. precision=2"
                )
            rules[key] = value
        else:
            rules[key] = check_tolerance(value, key)
    return rules


def _describe(opts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in opts.items())


def _looks_like_file(name: str) -> bool:
    p = Path(name).expanduser()
    return (
        p.suffix.lower() in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq") and p.is_file()
    )


def _check_options(info: BenchmarkInfo, opts: Mapping[str, Any]) -> None:
    params = inspect.signature(info.loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in opts:
        if key not in valid:
            raise SlowthinkError(
                f"benchmark '{info.name}' has no option '{key}'; valid options: "
                f"{', '.join([*valid, *_CENTRAL_OPTIONS, 'limit'])}"
            )


def _recategorize(col: Collector, key: str) -> None:
    for p in col.problems:
        if key not in p.meta:
            known = ", ".join(sorted(p.meta)) or "(none)"
            raise SlowthinkError(
                f"category_by='{key}': problem {p.id} has no meta '{key}'; meta keys: {known}"
            )
        p.meta["category"] = str(p.meta[key])


def parse_options(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Options from repeated CLI ``key=value`` strings, values typed like YAML scalars.

    The value keeps any further ``=`` and ``,`` (for ``fields=question=q,answer=a`` or
    ``config=min_terms=2,max_terms=2``); dashes in keys become underscores.

    >>> parse_options(["size=10", "allow-missing-images=true", "fields=question=q,answer=a"])
    {'size': 10, 'allow_missing_images': True, 'fields': 'question=q,answer=a'}
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k).replace("-", "_"): v for k, v in items.items()}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise SlowthinkError(f"bad benchmark option '{item}': write key=value")
        if key in out:
            raise SlowthinkError(f"benchmark option '{key}' given twice")
        out[key] = scalar(value) if "=" not in value and "," not in value else value.strip()
    return out
