"""The settings of one ``slowthink annotate`` run (flags or a YAML recipe of these fields)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from slowthink.distributed import Sharding
from slowthink.engines import key_env_names
from slowthink.types import SlowthinkError


@dataclass
class AnnotateConfig:
    """What to annotate, with what, into which folder.

    A YAML recipe holds any of these fields (``slowthink annotate --config recipe.yaml``); flags
    given on the command line win::

        mode: stages
        teacher: openai:http://127.0.0.1:8000/v1#gpt-4o
        engine_options: {api_key_env: OPENAI_API_KEY, max_concurrency: 32}
        benchmark: math-v
        limit: 50
        mode_options: {max_attempts: 3}
        out: data/llava-cot-mathv
        ray: auto             # optional: across the running Ray cluster's workers
        ray_workers: 4
    """

    mode: str
    out: str
    teacher: str | None = None
    """Engine spec of the teacher (any engine: ``llamacpp``, ``openai:URL#MODEL``, ``hf:PATH``...)."""
    policy: str | None = None
    """Engine spec of the policy that writes rollouts (``rollout-labels``)."""
    benchmark: str | None = None
    data: str | None = None
    fields: str | dict[str, Any] | None = None
    data_layout: str = "table"
    """``table``: ``--data`` read with ``--map`` like eval; ``llava``: LLaVA conversation data (LLaVA-CoT's
    input layout), one item per human/gpt pair, the gpt turn as the standard answer."""
    benchmark_options: dict[str, Any] = field(default_factory=dict)
    from_run: str | None = None
    """Items from the accepted records of an earlier annotate folder (their steps in ``meta["steps"]``)."""
    limit: int | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Options of the teacher engine (the policy gets those its kind has)."""
    mode_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    """Items per round: a round is one engine call for all of them (an HTTP engine sends them at
    once, at most its ``max_concurrency`` in flight); a finished batch is written before the next.
    ``None``: 16, or twice ``max_concurrency`` when that is larger (keeps a paid API's slots busy)."""
    seed: int = 0
    threads: int | None = None
    ignore_images: bool = False
    price: str | None = None
    """USD per million prompt and generated tokens, ``"2.5,10"``: the progress bar and the summary
    show the cost so far (``None``: tokens only)."""
    ray: str | None = None
    """Shard the batches across Ray workers (:mod:`slowthink.distributed`), each building its own
    teacher / policy from the specs; this process alone appends their records to
    ``annotations.jsonl``. ``auto`` (the running cluster), ``local`` (a Ray instance for this run),
    ``HOST:PORT`` or ``ray://HOST:10001``; ``None``: in this process. Not part of the record key."""
    ray_workers: int | None = None
    """Ray workers (each with its own engines); ``None``: as many as the cluster fits."""
    ray_cpus: float = 1.0
    """CPUs each Ray worker reserves (its in-process engine's ``threads`` unless given)."""
    ray_gpus: float = 0.0
    """GPUs each Ray worker reserves (``1``: one in-process teacher per GPU)."""

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise SlowthinkError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise SlowthinkError(f"--limit must be >= 1, got {self.limit}")
        if self.data_layout not in ("table", "llava"):
            raise SlowthinkError(f"--data-layout must be table or llava, got {self.data_layout!r}")
        if self.data_layout == "llava" and (self.benchmark or not self.data):
            raise SlowthinkError(
                "--data-layout llava reads --data FILE (LLaVA conversations), not --benchmark"
            )
        sources = [s for s in (self.benchmark or self.data, self.from_run) if s]
        if len(sources) != 1:
            raise SlowthinkError(
                "name the items once: --data FILE (with --map), --benchmark NAME, or --from-run DIR"
            )

        parse_price(self.price)  # a bad price is one error line before any work
        if self.ray is not None or self.ray_workers is not None:
            self.sharding()  # so are bad Ray settings

    def sharding(self) -> Sharding:
        """Where the batches run: in this process, or across Ray workers."""
        return Sharding.of(self, key_env_names([self.teacher, self.policy], self.engine_options))

    @property
    def items_per_round(self) -> int:
        """``batch_size``, or its default (16, or twice ``max_concurrency`` when larger)."""
        if self.batch_size is not None:
            return self.batch_size
        concurrency = self.engine_options.get("max_concurrency")
        return max(16, 2 * concurrency) if isinstance(concurrency, int) else 16

    def cost(self, prompt_tokens: int, generated_tokens: int) -> float | None:
        """USD for these tokens at ``price`` (``None`` without a price)."""
        p = parse_price(self.price)
        return None if p is None else round((prompt_tokens * p[0] + generated_tokens * p[1]) / 1e6, 6)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_price(price: str | None) -> tuple[float, float] | None:
    """``"2.5,10"`` -> ``(2.5, 10.0)``: USD per million prompt and generated tokens.

    >>> parse_price("2.5,10"), parse_price(None)
    ((2.5, 10.0), None)
    """
    if price is None:
        return None
    try:
        prompt, generated = (float(x) for x in str(price).split(","))
    except ValueError:
        raise SlowthinkError(
            f"--price {price!r}: write USD per million prompt and generated tokens, e.g. --price 2.5,10"
        ) from None
    if prompt < 0 or generated < 0:
        raise SlowthinkError(f"--price {price!r}: prices must be >= 0")
    return prompt, generated
