"""Shared machinery of the strategies: per-problem trees, batched expansion, seeds, accounting.

A strategy advances every live node of every problem together: it collects :class:`Job` s and
calls :func:`expand` once per search depth, which sends *one* ``Engine.generate`` call for the
whole batch and charges each problem's :class:`~slowthink.types.Compute` for its own samples.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from slowthink.engines.base import Engine
from slowthink.formats.base import Format, StepSpec
from slowthink.types import Completion, Node, Problem, Request, Trace


def stable_seed(*parts: Any) -> int:
    """A 31-bit seed from its parts, independent of batch composition and Python's hash salt."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


@dataclass
class SearchConfig:
    """Fields every strategy has."""

    n: int = 1
    """Samples (path-wise) or candidates per node (step-wise)."""
    temperature: float = 0.7
    """Sampling temperature of the policy (0 = greedy)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int = 0
    """Base seed; every request's seed derives from it, the problem id and the node."""
    max_depth: int = 12
    """Most steps on one path (step-wise strategies)."""
    max_tokens: int | None = None
    """Token budget of a whole response; ``None`` uses the format's default."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {self.max_depth}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tree:
    """The search tree of one problem, recorded in its :class:`Trace`."""

    def __init__(self, problem: Problem, strategy: str, fmt: Format, config: SearchConfig) -> None:
        self.problem = problem
        self.fmt = fmt
        self.messages = fmt.messages(problem)
        self.trace = Trace(problem_id=problem.id, strategy=strategy, format=fmt.name, config=config.to_dict())
        self.trace.nodes.append(Node(id=0, parent=None))
        self._text: dict[int, str] = {0: ""}

    def node(self, node_id: int) -> Node:
        return self.trace.nodes[node_id]

    def add(self, parent: int, text: str, **fields: Any) -> Node:
        p = self.trace.nodes[parent]
        node = Node(id=len(self.trace.nodes), parent=parent, text=text, depth=p.depth + 1, **fields)
        self.trace.nodes.append(node)
        self._text[node.id] = self._text[parent] + text
        return node

    def text(self, node_id: int) -> str:
        """The whole response text from the root down to ``node_id``."""
        return self._text[node_id]

    def path_to(self, node_id: int) -> list[int]:
        path = []
        cur: int | None = node_id
        while cur is not None:
            path.append(cur)
            cur = self.trace.nodes[cur].parent
        return path[::-1]

    def history(self, node_id: int) -> list[str]:
        return [self.trace.nodes[i].text for i in self.path_to(node_id)[1:]]

    def choose(self, node_id: int, answer: str | None) -> None:
        self.trace.path = self.path_to(node_id)
        for i in self.trace.path:
            self.trace.nodes[i].chosen = True
        self.trace.answer = answer


@dataclass
class Job:
    """One request to make for one node of one tree."""

    tree: Tree
    node_id: int
    spec: StepSpec
    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    direct: bool = False
    results: list[Completion] = field(default_factory=list)

    def request(self) -> Request:
        messages = self.tree.fmt.messages(self.tree.problem, direct=True) if self.direct else self.tree.messages
        return Request(
            messages=messages,
            prefix=self.tree.text(self.node_id) + self.spec.opener,
            n=self.n,
            stop=list(self.spec.stop),
            max_tokens=self.spec.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
        )


def expand(engine: Engine, jobs: Sequence[Job]) -> None:
    """Run all jobs in ONE engine call; fill ``job.results`` and charge each tree's compute."""
    if not jobs:
        return
    # Siblings and same-problem requests next to each other: prefix caches hit.
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i].tree.problem.id, jobs[i].node_id))
    requests = [jobs[i].request() for i in order]
    outputs = engine.generate(requests)
    if len(outputs) != len(requests):
        raise RuntimeError(f"engine {engine.name} returned {len(outputs)} results for {len(requests)} requests")
    charged: set[int] = set()
    for i, comps in zip(order, outputs):
        job = jobs[i]
        job.results = list(comps)
        compute = job.tree.trace.compute
        for c in comps:
            compute.add_completion(c)
        if id(job.tree) not in charged:
            compute.engine_calls += 1
            charged.add(id(job.tree))


def finish_traces(trees: Sequence[Tree], t0: float) -> list[Trace]:
    wall = time.perf_counter() - t0
    for t in trees:
        t.trace.compute.wall_time_s = wall
        t.trace.compute.batch_size = len(trees)
        if t.trace.answer is None and "no answer" not in t.trace.notes:
            t.trace.notes.append("no answer")
    return [t.trace for t in trees]


def first_error(comps: Sequence[Completion]) -> str | None:
    for c in comps:
        if c.finish_reason == "error":
            return c.error or "engine error"
    return None


def answer_key(answer: str | None, problem: Problem) -> str | None:
    """The voting key of an answer (grading's normalisation); ``None`` for no answer."""
    from slowthink.grading import normalize_answer

    if answer is None:
        return None
    return normalize_answer(answer, problem)


def sample_responses(
    engine: Engine,
    trees: Sequence[Tree],
    *,
    n: int,
    temperature: float,
    top_p: float,
    seed: int,
    max_tokens: int | None = None,
    direct: bool = False,
) -> None:
    """Sample ``n`` whole responses per problem in one engine call; one child of the root each.

    Each child gets its ``answer`` (extracted by the format) and ``final`` when an answer was found.
    """
    from slowthink.formats.free import FreeFormat

    jobs = []
    for tree in trees:
        spec = tree.fmt.full_spec()
        if direct:
            spec = StepSpec(kind="response", opener="", stop=["\n"], max_tokens=48)
        if max_tokens is not None and not direct:
            spec.max_tokens = max_tokens
        jobs.append(
            Job(tree, 0, spec, n=n, temperature=temperature, top_p=top_p,
                seed=stable_seed(seed, tree.problem.id, "responses"), direct=direct)
        )
    expand(engine, jobs)
    free = FreeFormat()
    for job in jobs:
        tree = job.tree
        err = first_error(job.results)
        if err and all(c.finish_reason == "error" for c in job.results):
            tree.trace.error = err
            continue
        for c in job.results:
            if c.finish_reason == "error":
                tree.add(0, "", kind="response", finish_reason="error", note=c.error)
                continue
            text, note = tree.fmt.finish_step(job.spec, c)
            fmt = free if direct else tree.fmt
            answer = fmt.answer(text, tree.problem)
            parsed_notes = fmt.parse(text).notes
            tree.add(
                0, text, kind="response", finish_reason=c.finish_reason, generated_tokens=c.generated_tokens,
                final=answer is not None, answer=answer, note="; ".join(filter(None, [note, *parsed_notes])) or None,
            )
