"""What an evaluation run is: :class:`EvalConfig`, and the :class:`Job` s it expands into.

A run evaluates several strategies at several N on one benchmark with one engine, format and
scorer. Those (the *identity* fields) must stay the same for the records of one run folder; the
*plan* fields (which strategies, which N, how many problems, how many subsampling seeds, the batch
size) may change between invocations, so a finished run can be extended.

How N maps to work:

* **path-wise** strategies (``STRATEGIES[name].pathwise``: majority, best_of_n) run ONCE at the
  largest N; every smaller N is derived by subsampling those samples (see
  :mod:`slowthink.evaluate.subsample`);
* **N-free** strategies (``STRATEGIES[name].n_free``: direct, cot, quick) run once; N does not
  change them (``quick`` is a greedy atomic rollout that never reads ``n``);
* every other (step-wise) strategy runs once per N, with ``n`` = candidates per node.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from slowthink.distributed import Sharding
from slowthink.engines import (
    EngineSpec,
    check_engine_options,
    engine_identity,
    key_env_names,
    merge_engine_options,
    pool_spec,
)
from slowthink.formats import get_format
from slowthink.search import STRATEGIES, make_config
from slowthink.search.presets import apply_preset, get_preset
from slowthink.types import SlowthinkError

#: Strategy options the eval CLI passes through (``None`` keeps the strategy's default).
STRATEGY_OPTIONS: tuple[str, ...] = ("beam", "aggregate", "select", "temperature", "max_tokens", "max_depth")

#: Options a strategy keeps at its own value (greedy_step is step_beam with a beam of 1).
FIXED_OPTIONS: dict[str, frozenset[str]] = {"greedy_step": frozenset({"beam"})}

#: Fields that must match between the records of one run folder.
IDENTITY_FIELDS: tuple[str, ...] = (
    "benchmark",
    "data",
    "fields",
    "benchmark_options",
    "format",
    "engine",
    "model",
    "scorer",
    "preset",
    *STRATEGY_OPTIONS,
    "seed",
    "ignore_images",
)

DEFAULT_NS: tuple[int, ...] = (1, 2, 4, 8, 16)


def parse_ns(text: str | list[int] | tuple[int, ...]) -> list[int]:
    """Parse ``"1,2,4"`` (or ``"1-16"`` for every N from 1 to 16) into sorted distinct N.

    >>> parse_ns("8,1,2,4,2"), parse_ns("1-4"), parse_ns([4, 1])
    ([1, 2, 4, 8], [1, 2, 3, 4], [1, 4])
    """
    if isinstance(text, (list, tuple)):
        items = [int(x) for x in text]
    else:
        items = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            try:
                items.extend(range(int(m[1]), int(m[2]) + 1) if m else [int(part)])
            except ValueError:
                raise SlowthinkError(
                    f"--n: '{part}' is not a whole number; write e.g. --n 1,2,4,8,16"
                ) from None
    if not items or any(n < 1 for n in items):
        raise SlowthinkError(f"--n needs positive whole numbers, got '{text}'; write e.g. --n 1,2,4,8,16")
    return sorted(set(items))


def parse_strategies(items: str | list[str] | None) -> list[str]:
    """Strategies from repeated options and/or comma lists, in order, without repeats.

    >>> parse_strategies(["majority,best_of_n", "step_beam", "majority"])
    ['majority', 'best_of_n', 'step_beam']
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    out: list[str] = []
    for item in items:
        for name in item.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


@dataclass
class EvalConfig:
    """One evaluation run.

    Each field's docstring is also its ``slowthink eval --help`` text: the command builds one option
    per field from them (:data:`slowthink.evaluate.cli.EVAL_OPTIONS`); ``engine_options`` comes from
    the engine flags instead. A ``:attr:`` reference reads as the field's option there.
    """

    # -- data
    benchmark: str | None = None
    """Registered benchmark name: ``gsm8k``, ``math-v``, ``mathvista``, ``mathverse``, ``math500``,
    ``mmstar``, ``reasoning-gym:TASK``, ...; with :attr:`data` too, that benchmark's loader reads
    :attr:`data` instead of its default file."""
    data: str | None = None
    """A data file (JSONL/JSON/CSV/TSV/parquet); alone, it is read by the generic ``jsonl`` loader
    with the field mapping :attr:`fields`."""
    fields: str | None = None
    """Field mapping of :attr:`data`: ``question=q,answer=a``, optionally with ``id=``, ``choices=``,
    ``image=``, ``category=``."""
    benchmark_options: dict[str, Any] = field(default_factory=dict)
    """Loader options (``size=100``, ``seed=1234``, ``split=test``, task options such as
    ``min_terms=2``, ...) and the grading rules of every benchmark (``abs_tol=0.001``,
    ``rel_tol=0.01``, ``precision=2``)."""
    limit: int | None = None
    """How many problems to evaluate, from the first (``None``: all)."""
    # -- what to run
    strategies: list[str] = field(default_factory=lambda: ["majority"])
    """Strategies to evaluate, in order: ``direct``, ``cot``, ``quick``, ``majority``, ``best_of_n``,
    ``step_beam``, ``greedy_step``, ``stage_beam``, ``sentence_beam`` (comma lists are split)."""
    format: str | None = None
    """Reasoning format: ``stages`` | ``atomic`` | ``sentences`` | ``free``, with options after ``#``
    (``atomic#style=atomthink``: AtomThink's step prompt). ``None``: ``atomic``, or the one of
    :attr:`preset`."""
    ns: list[int] = field(default_factory=lambda: list(DEFAULT_NS))
    """The N values (samples for path-wise strategies, candidates per node for step-wise ones), also
    as text: ``1,2,4,8,16`` or ``1-16``. Path-wise strategies sample once at the largest N and derive
    the rest by subsampling."""
    stepwise_ns: list[int] | None = None
    """N of the step-wise strategies (step_beam, stage_beam, ...) when it should differ from
    :attr:`ns` (each N is a full run, so a scaling study samples path-wise strategies at 1..16 but
    beams at 1,2,4,8). ``None``: :attr:`ns`."""
    seeds: int = 3
    """Random subsets drawn per smaller N when deriving path-wise results from the largest N."""
    # -- engine and scorer
    engine: str = "llamacpp"
    """Engine spec: ``llamacpp`` | ``hf:PATH`` | ``openai:URL#MODEL`` | ``vllm:MODEL`` |
    ``py:module:Class``, engine options as ``,key=value`` after it. A pool of OpenAI-compatible
    servers: ``openai:URL1#MODEL,URL2#MODEL`` (in YAML also a list of openai specs). Identity: the
    spec without options; an openai spec naming its model counts as ``openai#MODEL``, whatever
    the servers."""
    model: str | None = None
    """Model path for the engine (e.g. a GGUF file), appended to the spec as ``engine:model``."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Engine options (``timeout_s``, ``max_concurrency``, ``max_retries``, ``api_key_env``, ``n_ctx``,
    ...; see :func:`slowthink.engines.engine_option_names`), also given as ``key=value`` parts of
    the engine spec. Not identity: they change how the model is served, not what it answers (the
    spec's options are left out of the identity too)."""
    scorer: str | None = None
    """Scorer spec for best_of_n / beam strategies: ``symbolic`` | ``judge`` | ``prm:PATH`` |
    ``py:module:Class``."""
    preset: str | None = None
    """A paper's procedure for its strategy: ``llava-cot`` (stage_beam: LLaVA-CoT's knockout, judge
    prompts, reasoning check and stage prompts; see :mod:`slowthink.search.presets`). It fills in
    the format, the scorer and that strategy's options left unset: options you give win."""
    # -- strategy options (None = the strategy's default)
    beam: int | None = None
    """Beam width of step_beam (``None``: the strategy's default)."""
    aggregate: str | None = None
    """How step scores make a path score: ``min`` | ``last`` | ``mean`` | ``prod`` (``None``: the
    strategy's default)."""
    select: str | None = None
    """best_of_n: ``score`` | ``weighted`` | ``judge``; stage_beam / sentence_beam: ``judge`` |
    ``score`` (``None``: the strategy's default)."""
    temperature: float | None = None
    """Policy sampling temperature (``None``: the strategy's default)."""
    max_tokens: int | None = None
    """Token budget of a whole response (``None``: the format's default)."""
    max_depth: int | None = None
    """Most steps on one path (step-wise strategies; ``None``: the strategy's default)."""
    seed: int = 0
    """Base seed of every request."""
    # -- running
    grade_judge: str | None = None
    """LLM grading judge for free-form answers the rules call wrong: ``policy`` (the run's engine)
    or an engine spec (``openai:URL#MODEL``, ...). ``None``: rules and math-verify only. Not identity:
    verdicts are stored in ``grade_judge.jsonl`` and a run may be re-graded."""
    share_samples: bool = True
    """Path-wise strategies of one run (majority, best_of_n) take the samples another path-wise
    strategy already drew for a problem (same requests and seeds) instead of generating them again.
    Not identity."""
    threads: int | None = None
    """CPU threads of an in-process engine (llama.cpp, hf on CPU); ``None``: all cores (use 1 per
    process when several runs share the cores; on Ray: :attr:`ray_cpus`). Not part of a run's
    identity: a run may be resumed with another thread count."""
    batch_size: int = 8
    """Problems sent through one ``solve`` call (one engine call per search depth for the batch);
    on Ray, the unit of work a worker takes."""
    ray: str | None = None
    """Shard the batches across Ray workers, each building its own engine and scorer from these
    settings (a vLLM replica per GPU, a llama.cpp per core), records streamed back to this run's
    one records.jsonl: ``auto`` (the running cluster: ``RAY_ADDRESS`` or ``ray start --head`` on
    this machine), ``local`` (a Ray instance on this machine for this run), or a cluster address
    ``HOST:PORT`` / ``ray://HOST:10001``. ``None``: in this process. Needs slowthink's ``ray`` extra;
    the nodes need slowthink and the engine's packages installed. Not identity."""
    ray_workers: int | None = None
    """Ray workers (engines) to run; ``None``: as many as the cluster fits with :attr:`ray_cpus`
    and :attr:`ray_gpus` per worker."""
    ray_cpus: float = 1.0
    """CPUs each Ray worker reserves (also its engine's :attr:`threads` unless given)."""
    ray_gpus: float = 0.0
    """GPUs each Ray worker reserves (``1``: one engine per GPU)."""
    out: str = "runs/eval"
    """Run folder: records.jsonl, config.json, metrics.json, plots, report.html; running again into
    the same folder resumes it."""
    ignore_images: bool = False
    """Drop the problems' images (text-only engines)."""

    def __post_init__(self) -> None:
        self.engine = pool_spec(self.engine)  # a YAML list of openai specs is one pool spec
        self.strategies = parse_strategies(self.strategies)
        if self.preset is not None:
            applied = apply_preset(
                self.preset, self.strategies, fmt=self.format, scorer=self.scorer, options={}
            )
            self.format, self.scorer = applied.format, applied.scorer
        self.format = get_format(self.format or "atomic").spec  # canonical: 'atomic#style=line' is 'atomic'
        self.ns = parse_ns(self.ns)
        if self.stepwise_ns is not None:
            self.stepwise_ns = parse_ns(self.stepwise_ns)
        if self.benchmark is None and self.data is None:
            raise SlowthinkError(
                "name the problems: --benchmark NAME, or --data FILE with --map for its fields"
            )
        if not self.strategies:
            raise SlowthinkError("--strategy is empty: name at least one (e.g. --strategy majority)")
        if self.seeds < 1:
            raise SlowthinkError(f"--seeds must be >= 1, got {self.seeds}")
        if self.threads is not None and self.threads < 1:
            raise SlowthinkError(f"--threads must be >= 1, got {self.threads}")
        if self.batch_size < 1:
            raise SlowthinkError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.ray is not None or self.ray_workers is not None:
            self.sharding()  # checks the Ray settings in one line
        if self.limit is not None and self.limit < 1:
            raise SlowthinkError(f"--limit must be >= 1, got {self.limit}")
        for name in ("max_tokens", "max_depth", "beam"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SlowthinkError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.engine_options, dict):
            raise SlowthinkError(
                f"engine_options must be a mapping of engine options (e.g. timeout_s: 30), got {self.engine_options!r}"
            )
        if not self.engine.startswith("py:"):
            spec = EngineSpec.parse(self.engine_spec)  # checks the spec's own options
            check_engine_options(spec.kind, self.engine_options)
            merge_engine_options(dict(spec.options), self.engine_options, self.engine_spec)

    @property
    def engine_spec(self) -> str:
        if self.model is None or ":" in self.engine:
            return self.engine
        return f"{self.engine}:{self.model}"

    def sharding(self) -> Sharding:
        """Where the batches run (:mod:`slowthink.distributed`): here, or across Ray workers."""
        return Sharding.of(self, key_env_names([self.engine_spec], self.engine_options))

    def identity(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in IDENTITY_FIELDS}
        if not self.engine.startswith("py:"):
            out["engine"] = engine_identity(self.engine)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def stored_identity(identity: dict[str, Any]) -> dict[str, Any]:
        """An identity read from a run folder, in today's terms: an openai spec stored with its
        server URL (before engine pools) counts as ``openai#MODEL``, so such a run still resumes.

        >>> EvalConfig.stored_identity({"engine": "openai:http://h/v1#m", "seed": 0})
        {'engine': 'openai#m', 'seed': 0}
        """
        engine = identity.get("engine")
        if isinstance(engine, str) and engine.startswith("openai:"):
            try:
                return {**identity, "engine": engine_identity(engine)}
            except SlowthinkError:
                return identity
        return identity

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def strategy_options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in STRATEGY_OPTIONS if getattr(self, k) is not None}


@dataclass(frozen=True)
class Job:
    """One (strategy, generation N) to run over every problem; ``report_ns`` are the N it reports."""

    strategy: str
    n: int | None
    """``n`` passed to the strategy; ``None`` for N-free strategies (strategy default)."""
    report_ns: tuple[int | None, ...]
    pathwise: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """The config key of this job's records (with the strategy and problem id, the record key)."""
        return "default" if self.n is None else f"n={self.n}"

    @property
    def label(self) -> str:
        return self.strategy if self.n is None else f"{self.strategy} n={self.n}"

    def options(self) -> dict[str, Any]:
        opts = dict(self.overrides)
        if self.n is not None:
            opts["n"] = self.n
        return opts


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def plan_jobs(config: EvalConfig) -> list[Job]:
    """Expand a config into jobs; check every strategy and option before any model loads."""
    opts = config.strategy_options()
    preset = get_preset(config.preset) if config.preset is not None else None
    used: set[str] = set()
    jobs: list[Job] = []
    for name in config.strategies:
        fields = make_config(name).__dataclass_fields__  # unknown names -> one clear error
        entry = STRATEGIES[name]
        mine = {k: v for k, v in opts.items() if k in fields and k not in FIXED_OPTIONS.get(name, ())}
        used.update(mine)
        if preset is not None and name == preset.strategy:  # the preset's options, where none is given
            mine = {**preset.options, **mine}
        try:
            resolved = make_config(name, **mine)
        except ValueError as e:
            raise SlowthinkError(f"strategy '{name}': {e}") from None
        if entry.needs_scorer and config.scorer is None:
            raise SlowthinkError(f"strategy '{name}' needs a scorer: pass --scorer (e.g. --scorer symbolic)")
        frozen = tuple(sorted(mine.items()))
        if entry.n_free:
            jobs.append(Job(name, None, (None,), overrides=frozen))
        elif entry.path is not None:
            top = max(config.ns)
            if entry.path.knockout(resolved) and not all(is_power_of_two(n) for n in config.ns):
                raise SlowthinkError(
                    f"{name} with select=judge derives smaller N from the sub-brackets of one knockout "
                    f"at N={top}: every --n must be a power of two (got {','.join(map(str, config.ns))})"
                )
            jobs.append(Job(name, top, tuple(config.ns), pathwise=True, overrides=frozen))
        else:
            jobs.extend(Job(name, n, (n,), overrides=frozen) for n in config.stepwise_ns or config.ns)
    unused = sorted(set(opts) - used)
    if unused:
        raise SlowthinkError(
            f"option(s) {', '.join('--' + u.replace('_', '-') for u in unused)} apply to none of the "
            f"strategies {', '.join(config.strategies)}"
        )
    return jobs
