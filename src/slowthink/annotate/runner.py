"""The resumable annotation loop behind ``slowthink annotate``.

::

    from slowthink.annotate import AnnotateConfig, run_annotate

    result = run_annotate(AnnotateConfig(mode="atomic-segment", benchmark="gsm8k",
                                         benchmark_options={"split": "train"}, limit=20, out="data/gsm8k-atomic"))
    result.summary["accepted"], result.datasets    # {"sft_steps.jsonl": 93}

The output folder holds ``annotations.jsonl`` (append-only: one record per finished item, flushed and
fsynced: accepted items when their round ends, the rest of a batch when it ends, so a ``kill -9``
loses at most the unfinished items of the batch in flight; a torn last line is trimmed before the
next append), ``config.json``, ``summary.json`` and the datasets
(``sft_llava.jsonl``, ``sft_steps.jsonl``, ``prm.jsonl``, rebuilt from the accepted records at the
end of every run). Re-running the same command skips items whose (id, mode, teacher, prompt
version) already has an accepted or rejected record; ``error`` records (engine failures) are
re-run. When every item of a run's first batch fails in the engine (and none had failed before)
the run stops with one error line and records nothing for that batch.

The batches go through the sharding layer (:mod:`slowthink.distributed`, :func:`run_pending`): in
this process, or with ``config.ray`` across Ray workers that each build their own engines; this
process alone appends to ``annotations.jsonl``. On Ray a batch's records come back when the batch
ends, so a ``kill -9`` of this process loses the batches in flight (the same command re-runs them).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slowthink.annotate.config import AnnotateConfig
from slowthink.annotate.datasets import DATASETS, export_datasets
from slowthink.annotate.loaders import llava_items, load_release
from slowthink.annotate.modes import Mode, ModeContext, get_mode
from slowthink.annotate.records import Annotation, AnnotationKey, record_key
from slowthink.benchmarks import load_benchmark
from slowthink.distributed import open_pool
from slowthink.engines import (
    EngineSpec,
    check_engine_options,
    engine_option_names,
    load_engine,
    strip_spec_options,
)
from slowthink.jsonl import RecordWriter, iter_jsonl, write_json
from slowthink.progress import ProgressBars
from slowthink.types import Problem, SlowthinkError

ANNOTATIONS = "annotations.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"
SPLIT_TEACHER = "none"
"""The teacher id of a run without a teacher (``atomic-segment``'s deterministic split)."""


@dataclass
class AnnotateResult:
    out_dir: Path
    summary: dict[str, Any]
    new: int = 0
    resumed: int = 0
    datasets: dict[str, int] = field(default_factory=dict)


def reason_code(reason: str) -> str:
    """The kind of a rejection reason (the text before ``:`` or `` (``).

    >>> reason_code("numbers lost: 24, 72 (attempt 1)"), reason_code("empty reply (attempt 2)")
    ('numbers lost', 'empty reply')
    """
    return reason.split(":", 1)[0].split(" (", 1)[0].strip()


def read_annotations(path: Path) -> tuple[dict[AnnotationKey, dict[str, Any]], int]:
    """Records by key (the last line of a key wins) and how many lines were unreadable."""
    out: dict[AnnotationKey, dict[str, Any]] = {}
    bad = 0
    for _, obj in iter_jsonl(path):
        try:
            out[record_key(obj)] = obj
        except (KeyError, TypeError):
            bad += 1
    return out, bad


def _engine_id(spec: str | None) -> str:

    return strip_spec_options(spec) if spec else SPLIT_TEACHER


def _check_spec(spec: str, options: dict[str, Any], flag: str) -> None:

    s = EngineSpec.parse(spec)
    check_engine_options(s.kind, options, where=f"{flag} engine option")
    if s.kind == "llamacpp" and s.target and not Path(s.target).expanduser().is_file():
        raise SlowthinkError(f"model not found: {s.target} ({flag}): pass an existing GGUF file")


def _policy_options(spec: str, options: dict[str, Any]) -> dict[str, Any]:

    valid = engine_option_names(EngineSpec.parse(spec).kind)
    return {k: v for k, v in options.items() if k in valid}


def _build(spec: str, options: dict[str, Any], threads: int | None):

    return load_engine(spec, **options, **({"n_threads": threads} if threads else {}))


def load_items(config: AnnotateConfig):
    """The run's items: ``(problems, skipped-by-reason, source description)``."""
    if config.from_run:
        return problems_from_run(Path(config.from_run), config.limit)
    if config.data_layout == "llava":
        problems, skipped, source = llava_items(Path(config.data), config.limit)
        return (
            ([replace(p, images=[]) for p in problems] if config.ignore_images else problems),
            skipped,
            source,
        )

    fields = {} if config.fields is None else {"fields": config.fields}
    load = load_benchmark(
        config.benchmark or "jsonl", config.data, limit=config.limit, **config.benchmark_options, **fields
    )
    problems = [replace(p, images=[]) for p in load.problems] if config.ignore_images else load.problems
    return problems, Counter(load.skipped), load.summary()


def problems_from_run(run_dir: Path, limit: int | None = None) -> tuple[list[Problem], Counter, str]:
    """The accepted items of an earlier annotate folder, their steps in ``meta["steps"]`` (the input
    of ``negatives`` and ``rollout-labels``) and LLaVA-CoT stages in ``meta[stage]``."""
    path = run_dir / ANNOTATIONS
    if not path.is_file():
        raise SlowthinkError(f"--from-run {run_dir} holds no {ANNOTATIONS}: pass an annotate output folder")
    records, _ = read_annotations(path)
    problems: list[Problem] = []
    skipped: Counter = Counter()
    for rec in records.values():
        if rec.get("status") != "accepted" or not rec.get("steps"):
            skipped["not an accepted chain"] += 1
            continue
        try:
            a = Annotation.from_dict(rec)
        except (KeyError, TypeError, ValueError):
            skipped["unreadable record"] += 1
            continue
        chain = a.extra.get("chain") or a.steps
        # stages by name too: ``atomic-segment --from-run DIR -M source=reasoning`` cuts REASONING stages
        a.problem.meta = {**a.problem.meta, **(a.stages or {}), "steps": list(chain), "from_mode": a.mode}
        problems.append(a.problem)
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise SlowthinkError(f"--from-run {run_dir} has no accepted chain to use")
    return problems, skipped, f"{len(problems)} accepted chains from {path}"


def _out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SlowthinkError(f"--out {out} is a file: pass a folder for the annotations and datasets")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SlowthinkError(
            f"cannot create {out} ({e.strerror or e}): pass a writable --out folder"
        ) from None
    for name in (ANNOTATIONS, CONFIG, SUMMARY, *DATASETS):
        if (out / name).is_dir():
            raise SlowthinkError(
                f"{out / name} is a folder, but the run writes a file there: move it or use another --out"
            )


BAR_FIELDS = ("accepted {task.fields[rate]}", "{task.fields[cost]}")
"""The progress bar's columns after done/total: the accept rate and the tokens (and USD) so far."""


def run_annotate(
    config: AnnotateConfig,
    *,
    teacher=None,
    policy=None,
    progress: bool = True,
    console=None,
) -> AnnotateResult:
    """Run (or resume) an annotation; write records, datasets, config.json and summary.json.

    ``teacher`` / ``policy`` engine objects may be passed in (tests, notebooks); otherwise they are
    built from the config's specs, only when some item still needs annotating."""
    t0 = time.perf_counter()
    mode: Mode = get_mode(config.mode)
    options = mode.options(config.mode_options)
    if mode.needs_teacher and not config.teacher and teacher is None:
        raise SlowthinkError(
            f"mode '{mode.name}' needs a teacher: pass --teacher SPEC (e.g. llamacpp, openai:URL#MODEL)"
        )
    if mode.needs_policy and not config.policy and policy is None:
        raise SlowthinkError(f"mode '{mode.name}' needs a policy engine: pass --policy SPEC (e.g. llamacpp)")
    if config.sharding().distributed and (teacher is not None or policy is not None):
        raise SlowthinkError(
            "on Ray each worker builds its engines from the config: pass --teacher/--policy specs, not engine objects"
        )
    if config.teacher and teacher is None:
        _check_spec(config.teacher, config.engine_options, "--teacher")
    if config.policy and policy is None:
        _check_spec(config.policy, _policy_options(config.policy, config.engine_options), "--policy")
    problems, skipped, source = load_items(config)
    usable = _usable(problems, mode, options, skipped)
    out = Path(config.out)
    _out_dir(out)
    teacher_id = _teacher_id(config, mode, teacher, policy)
    key_of = {p.id: (p.id, mode.name, teacher_id, mode.prompt_version) for p in usable}
    records, bad_lines = read_annotations(out / ANNOTATIONS)
    done = {k for k, r in records.items() if r.get("status") in ("accepted", "rejected")}
    pending = [p for p in usable if key_of[p.id] not in done]
    resumed = len(usable) - len(pending)
    write_json(
        out / CONFIG,
        {
            "config": config.to_dict(),
            "options": asdict(options),
            "teacher_id": teacher_id,
            "prompt_version": mode.prompt_version,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    new = 0
    if pending:
        factory = AnnotatorFactory(
            config, options, teacher_id, next(([p] for p in pending if p.images), []), teacher, policy
        )
        prior = [records[key_of[p.id]] for p in usable if key_of[p.id] in done]
        new, local = run_pending(factory, pending, records, prior, progress=progress, console=console)
        if local is not None:
            teacher, policy = local.ctx.teacher, local.ctx.policy
    current = [records[k] for k in key_of.values() if k in records]
    # this run's items in input order (whatever order the workers finished in), then the folder's others
    order = {k: i for i, k in enumerate(key_of.values())}
    ranked = sorted(records.items(), key=lambda kv: order.get(kv[0], len(order)))
    datasets = export_datasets(out, _accepted(r for _, r in ranked))
    summary = summarize(current, skipped, time.perf_counter() - t0, new=new, resumed=resumed)
    summary["tokens"]["cost_usd"] = config.cost(summary["tokens"]["prompt"], summary["tokens"]["generated"])
    summary.update(
        {
            "mode": mode.name,
            "teacher": teacher_id,
            "prompt_version": mode.prompt_version,
            "source": source,
            "datasets": datasets,
            "unreadable_lines": bad_lines,
            **{
                f"{role}_engine_stats": dict(e.stats)
                for role, e in (("teacher", teacher), ("policy", policy))
                if isinstance(getattr(e, "stats", None), dict)
            },
        }
    )
    write_json(out / SUMMARY, summary)
    return AnnotateResult(out, summary, new, resumed, datasets)


@dataclass
class _Tally:
    """What the progress bar shows: items finished and accepted, tokens so far; ``new`` records."""

    finished: int = 0
    accepted: int = 0
    new: int = 0
    tokens: Counter = field(default_factory=Counter)

    def add(self, recs: Iterable[dict[str, Any]]) -> None:
        for r in recs:
            self.finished += 1
            self.accepted += r.get("status") == "accepted"
            for k in ("prompt_tokens", "generated_tokens"):
                self.tokens[k] += int((r.get("usage") or {}).get(k, 0))

    @property
    def rate(self) -> str:
        return (
            f"{self.accepted / self.finished:.0%} ({self.accepted}/{self.finished})" if self.finished else "-"
        )

    def cost(self, config: AnnotateConfig) -> str:
        usd = config.cost(self.tokens["prompt_tokens"], self.tokens["generated_tokens"])
        total = f"{self.tokens['prompt_tokens'] + self.tokens['generated_tokens']} tok"
        return total if usd is None else f"{total} ${usd:.4f}"


class _Sink:
    """Writes finished annotations (each once: accepted ones as soon as a mode hands them over, the
    rest of a batch when it ends), keeps ``records`` current and the progress bar moving."""

    def __init__(
        self,
        writer: RecordWriter,
        records: dict[AnnotationKey, dict[str, Any]],
        config: AnnotateConfig,
        bar: ProgressBars,
    ) -> None:
        self.writer, self.records, self.config, self.bar = writer, records, config, bar
        self.tally = _Tally()
        self.written: set[AnnotationKey] = set()
        """Keys written by this run (never object ids: a finished batch's objects are freed and their
        ids reused)."""
        self.task = None

    def start(self, label: str, total: int) -> None:
        self.task = self.bar.add(
            label, total, self.tally.finished, rate=self.tally.rate, cost=self.tally.cost(self.config)
        )

    def write(self, annotations: list[Annotation]) -> None:
        fresh = [a for a in annotations if a.key not in self.written]
        if not fresh:
            return
        self.written.update(a.key for a in fresh)
        dicts = [a.to_dict() for a in fresh]
        self.writer.write(dicts)
        self.records.update((record_key(d), d) for d in dicts)
        self.tally.add(dicts)
        self.tally.new += len(dicts)
        self.bar.advance(self.task, len(dicts), rate=self.tally.rate, cost=self.tally.cost(self.config))


@dataclass
class Annotator:
    """What each worker builds once (:class:`AnnotatorFactory`): the mode and its context (engines)."""

    mode: Mode
    ctx: ModeContext


@dataclass
class AnnotatorFactory:
    """Builds a worker's :class:`Annotator` from the run's config (picklable: Ray workers call it):
    the engines from the specs (or the engine objects given, in this process only), checked against
    ``with_image`` (the first pending item with an image, if any). ``finished`` (in this process
    only) receives accepted annotations as soon as their round ends."""

    config: AnnotateConfig
    options: Any
    teacher_id: str
    with_image: list[Problem]
    teacher: Any = None
    policy: Any = None
    finished: Callable[[list[Annotation]], None] | None = None

    def __call__(self) -> Annotator:
        mode = get_mode(self.config.mode)
        teacher, policy = _engines(self.config, mode, self.teacher, self.policy)
        _check_images(self.with_image, [e for e in (teacher, policy) if e is not None])
        ctx = ModeContext(
            options=self.options,
            seed=self.config.seed,
            teacher=teacher,
            policy=policy,
            teacher_id=self.teacher_id,
            finished=self.finished,
        )
        return Annotator(mode, ctx)


def annotate_batch(annotator: Annotator, batch: list[Problem]) -> list[Annotation]:
    """A worker's part: annotate one batch (:func:`run_batch`); the driver writes the records."""
    return run_batch(annotator.mode, batch, annotator.ctx)


def run_pending(
    factory: AnnotatorFactory,
    pending: list[Problem],
    records: dict[AnnotationKey, dict[str, Any]],
    prior: list[dict[str, Any]],
    *,
    progress: bool = True,
    console=None,
) -> tuple[int, Annotator | None]:
    """Annotate ``pending``, ``items_per_round`` at a time, through the sharding layer
    (:mod:`slowthink.distributed`): in this process, or with ``config.ray`` across Ray workers,
    each with the engines it builds from the config. This process alone appends the records
    (``records`` kept current; ``prior``: the run's finished records, for the progress bar).
    Returns the records written and the in-process :class:`Annotator` (``None`` on Ray).

    Fail-fast: when every item of the first batch that comes back fails in the engine (and one of
    them had no record before) the run stops with one error line and records nothing for it."""
    config = factory.config
    sharding = config.sharding()
    if sharding.distributed and config.threads is None:  # a worker's engine uses the cores it reserved
        config = replace(config, threads=max(1, int(config.ray_cpus)))
    step, succeeded, label = config.items_per_round, False, get_mode(config.mode).name
    bar = ProgressBars(progress, BAR_FIELDS, width=16, remaining=False, console=console)
    with RecordWriter(Path(config.out) / ANNOTATIONS) as writer:
        sink = _Sink(writer, records, config, bar)
        sink.tally.add(prior)

        def on_result(batch: list[Problem], anns: list[Annotation]) -> None:
            nonlocal succeeded
            failed = [a for a in anns if a.status == "error"]
            # the first batch failing entirely stops the run (nothing of it was handed over early:
            # only accepted annotations are), unless all of it had failed before
            if not succeeded and len(failed) == len(batch) and any(a.key not in records for a in anns):
                raise SlowthinkError(
                    f"every item of the first batch failed in the engine ({len(batch)} of {len(batch)}), so the "
                    f"run stopped and recorded nothing for them: {failed[0].reasons[-1]}"
                )
            succeeded = succeeded or len(failed) < len(batch)
            sink.write(anns)

        factory = replace(factory, config=config, finished=None if sharding.distributed else sink.write)
        batches = (pending[i : i + step] for i in range(0, len(pending), step))
        with open_pool(factory, sharding) as pool, bar:  # Ray connected (or not: one error line) first
            sink.start(label, len(prior) + len(pending))
            pool.run(batches, annotate_batch, on_result)
            return sink.tally.new, pool.local_state


def _engines(config: AnnotateConfig, mode: Mode, teacher, policy) -> tuple[Any, Any]:
    """The teacher and policy engines (given objects win; specs are built now, when work is left)."""
    if policy is None and (mode.needs_policy or config.policy):
        policy = _build(config.policy, _policy_options(config.policy, config.engine_options), config.threads)
    if teacher is None and config.teacher:
        teacher = _build(config.teacher, config.engine_options, config.threads)
    return teacher, policy


def _usable(problems: list[Problem], mode: Mode, options: Any, skipped: Counter) -> list[Problem]:
    """The items the mode can annotate; the others counted in ``skipped`` by reason."""
    usable: dict[str, Problem] = {}
    for p in problems:
        why = "duplicate id" if p.id in usable else mode.unusable(p, options)
        if why:
            skipped[why] += 1
        else:
            usable[p.id] = p
    return list(usable.values())


def _teacher_id(config: AnnotateConfig, mode: Mode, teacher, policy) -> str:
    """Who annotates, as recorded in the dedup key: the engine spec without its options (the policy's
    for ``rollout-labels``), an engine object's name, or ``none`` (the deterministic split)."""
    spec, engine = (config.policy, policy) if mode.needs_policy else (config.teacher, teacher)
    if spec:
        return _engine_id(spec)
    return getattr(engine, "name", "engine") if engine is not None else SPLIT_TEACHER


def run_batch(mode: Mode, batch: list[Problem], ctx: ModeContext) -> list[Annotation]:
    """``mode.run`` on a batch; when it raises (a bug or an engine that raises instead of returning
    error completions), the batch is run item by item so only the item(s) that raise get an
    ``error`` record. A :class:`SlowthinkError` (a setting every item would hit) stops the run."""
    try:
        return mode.run(batch, ctx)
    except (SlowthinkError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        if len(batch) > 1:
            return [a for p in batch for a in run_batch(mode, [p], ctx)]
        a = mode.new(batch[0], ctx)
        a.status = "error"
        a.reasons.append(f"raised {type(e).__name__}: {str(e)[:300]}")
        return [a]


def _accepted(records) -> list[Annotation]:
    out = []
    for r in records:
        if r.get("status") == "accepted":
            try:
                out.append(Annotation.from_dict(r))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _check_images(problems: list[Problem], engines: list) -> None:
    with_image = next((p for p in problems if p.images), None)
    if with_image is None:
        return
    for engine in engines:
        if not getattr(engine, "supports_images", True):
            raise SlowthinkError(
                f"engine '{engine.name}' is text-only but item {with_image.id} has an image: pass --ignore-images "
                "to drop images, or a multimodal teacher (openai:URL#MODEL, hf:PATH, vllm:MODEL)"
            )


def summarize(
    records: list[dict[str, Any]], skipped: Counter, wall_s: float, *, new: int, resumed: int
) -> dict[str, Any]:
    """Accepted / rejected by reason / errors, input rows skipped by reason, tokens and wall time."""
    status = Counter(r.get("status") for r in records)
    reasons = Counter(
        reason_code((r.get("reasons") or ["unknown"])[-1]) for r in records if r.get("status") == "rejected"
    )
    methods = Counter(r.get("method") for r in records if r.get("status") == "accepted")
    usage = Counter()
    for r in records:
        for k, v in (r.get("usage") or {}).items():
            usage[k] += int(v)
    steps = [len(r.get("steps") or []) for r in records if r.get("status") == "accepted"]
    return {
        "items": len(records),
        "accepted": status["accepted"],
        "rejected": status["rejected"],
        "errors": status["error"],
        "accept_rate": round(status["accepted"] / len(records), 4) if records else None,
        "rejected_by_reason": dict(reasons.most_common()),
        "accepted_by_method": dict(methods.most_common()),
        "skipped_inputs": dict(skipped),
        "steps_per_accepted": round(sum(steps) / len(steps), 2) if steps else None,
        "tokens": {
            "prompt": usage["prompt_tokens"],
            "generated": usage["generated_tokens"],
            "calls": usage["calls"],
        },
        "new": new,
        "resumed": resumed,
        "wall_time_s": round(wall_s, 2),
        "items_per_min": round(new / wall_s * 60, 2) if new and wall_s > 0 else None,
    }


def run_import(release: str, data: str, out: str, *, limit: int | None = None) -> AnnotateResult:
    """Load a released dataset (:mod:`slowthink.annotate.loaders`) into an annotate folder: the same
    records (appended, deduplicated by key), datasets and summary as an annotation run."""

    t0 = time.perf_counter()
    rel = load_release(release, data, limit)
    folder = Path(out)
    _out_dir(folder)
    records, bad_lines = read_annotations(folder / ANNOTATIONS)
    fresh = [a.to_dict() for a in rel.annotations if a.key not in records]
    with RecordWriter(folder / ANNOTATIONS) as writer:
        writer.write(fresh)
    for d in fresh:
        records[record_key(d)] = d
    keys = {a.key for a in rel.annotations}
    datasets = export_datasets(folder, _accepted(records.values()))
    summary = summarize(
        [records[k] for k in keys],
        rel.skipped,
        time.perf_counter() - t0,
        new=len(fresh),
        resumed=len(keys) - len(fresh),
    )
    summary.update(
        {
            "mode": f"release:{release}",
            "teacher": f"release:{release}",
            "prompt_version": "release",
            "source": f"{len(rel.annotations)} records from {data}",
            "datasets": datasets,
            "unreadable_lines": bad_lines,
        }
    )
    write_json(folder / SUMMARY, summary)
    return AnnotateResult(folder, summary, len(fresh), len(keys) - len(fresh), datasets)
