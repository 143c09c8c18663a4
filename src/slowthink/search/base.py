"""Shared machinery of the strategies: per-problem trees, batched expansion, seeds, accounting.

A strategy advances every live node of every problem together: it collects :class:`Job` s and
calls :func:`expand` once per search depth, which sends *one* ``Engine.generate`` call for the
whole batch and charges each problem's :class:`~slowthink.types.Compute` for its own samples.

Committed steps: a strategy that settles on a step before the search ends (``quick`` after each
accepted step, ``stage_beam`` after each stage's winner) calls :meth:`Tree.commit`; every strategy
commits the rest of its chosen path in :meth:`Tree.choose`. A listener set with :func:`commit_listener`
(``solve(..., on_commit=...)``) hears each committed node once, in path order, as it happens.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from slowthink.engines.base import Engine
from slowthink.formats.base import Format, StepSpec
from slowthink.formats.free import FreeFormat
from slowthink.grading import normalize_answer
from slowthink.scorers.aggregate import aggregate
from slowthink.scorers.base import ScoreQuery, StepScorer, charge_call
from slowthink.types import Completion, Node, Problem, Request, Trace


def stable_seed(*parts: Any) -> int:
    """A 31-bit seed from its parts, independent of batch composition and Python's hash salt."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


@dataclass
class SearchConfig:
    """Fields every strategy has. A field typed ``Literal[...]`` (``select``, ``aggregate``,
    ``pairing``) is checked against its values when the config is built."""

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
        for name, allowed in choices(type(self)).items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def choices(cls: type[SearchConfig]) -> dict[str, tuple[Any, ...]]:
    """The config fields typed ``Literal[...]`` and their allowed values.

    Example:
        >>> from slowthink.search.best_of_n import BestOfNConfig
        >>> choices(BestOfNConfig)
        {'select': ('score', 'weighted', 'judge'), 'aggregate': ('min', 'last', 'mean', 'prod')}
    """
    hints = typing.get_type_hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in dataclasses.fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


#: ``listener(problem_id, node)``: told of each node a search commits to (see :func:`commit_listener`).
CommitListener = Callable[[str, Node], None]
_LISTENER: ContextVar[CommitListener | None] = ContextVar("slowthink_commit_listener", default=None)


@contextmanager
def commit_listener(listener: CommitListener | None) -> Iterator[None]:
    """Trees made inside the block report their committed nodes to ``listener`` (on the thread
    that runs the search)."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


class Tree:
    """The search tree of one problem, recorded in its :class:`Trace`."""

    def __init__(self, problem: Problem, strategy: str, fmt: Format, config: SearchConfig) -> None:
        self.problem = problem
        self.fmt = fmt
        self.trace = Trace(problem_id=problem.id, strategy=strategy, format=fmt.spec, config=config.to_dict())
        self.trace.nodes.append(Node(id=0, parent=None))
        self._text: dict[int, str] = {0: ""}
        self.reused_wall_s = 0.0
        """Per-problem wall time of reused samples' generation (see :func:`reuse_samples`)."""
        self._listener = _LISTENER.get()
        self._committed = 0  # nodes of the path (root excluded) already reported

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

    def commit(self, node_id: int) -> None:
        """The search will keep the path to ``node_id``: report its nodes not reported yet. Every
        commit of a search extends the path of the previous one."""
        path = self.path_to(node_id)[1:]
        if self._listener is not None:
            for i in path[self._committed :]:
                self._listener(self.problem.id, self.trace.nodes[i])
        self._committed = len(path)

    def choose(self, node_id: int, answer: str | None) -> None:
        self.commit(node_id)
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
        tree = self.tree
        if self.direct:
            messages, prefix = (
                tree.fmt.messages(tree.problem, direct=True),
                tree.text(self.node_id) + self.spec.opener,
            )
        else:  # the format lays out the request (one assistant turn continued, or a fresh turn per step)
            messages, prefix = tree.fmt.step_request(tree.problem, tree.history(self.node_id), self.spec)
        return Request(
            messages=messages,
            prefix=prefix,
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
        raise RuntimeError(
            f"engine {engine.name} returned {len(outputs)} results for {len(requests)} requests"
        )
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
        # wall_time_s is the batch's (per problem: / batch_size); a reused sampling adds its per-problem share
        t.trace.compute.wall_time_s = wall + t.reused_wall_s * len(trees)
        t.trace.compute.batch_size = len(trees)
        if t.trace.answer is None and "no answer" not in t.trace.notes:
            t.trace.notes.append("no answer")
    return [t.trace for t in trees]


def first_error(comps: Sequence[Completion]) -> str | None:
    for c in comps:
        if c.finish_reason == "error":
            return c.error or "engine error"
    return None


def samples(trace: Trace) -> list[Node]:
    """The whole-response samples of a path-wise trace (children of the root), in sampling order."""
    return [n for n in trace.nodes if n.parent == 0]


def answer_key(answer: str | None, problem: Problem) -> str | None:
    """The voting key of an answer (grading's normalisation); ``None`` for no answer."""
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
    reuse: Mapping[str, Trace] | None = None,
) -> None:
    """Sample ``n`` whole responses per problem in one engine call; one child of the root each.

    Each child gets its ``answer`` (extracted by the format) and ``final`` when an answer was found.
    ``reuse`` maps problem ids to path-wise traces made with the same format, sampling settings and
    base seed (see :func:`reuse_samples`): those problems take the first ``n`` recorded samples
    instead of generating them again.
    """
    jobs = []
    for tree in trees:
        prior = (reuse or {}).get(tree.problem.id)
        if prior is not None and reuse_samples(tree, prior, n):
            continue
        spec = tree.fmt.full_spec()
        if direct:
            spec = tree.fmt.direct_spec()
        if max_tokens is not None and not direct:
            spec.max_tokens = max_tokens
        jobs.append(
            Job(
                tree,
                0,
                spec,
                n=n,
                temperature=temperature,
                top_p=top_p,
                seed=stable_seed(seed, tree.problem.id, "responses"),
                direct=direct,
            )
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
                0,
                text,
                kind="response",
                finish_reason=c.finish_reason,
                generated_tokens=c.generated_tokens,
                final=answer is not None,
                answer=answer,
                note="; ".join(filter(None, [note, *parsed_notes])) or None,
            )


#: Config fields that must match for another trace's samples to be reused (see :func:`reuse_samples`).
SAMPLING_FIELDS: tuple[str, ...] = ("temperature", "top_p", "max_tokens", "seed")


def reuse_samples(tree: Tree, prior: Trace, n: int) -> bool:
    """Copy the first ``n`` whole-response samples of ``prior`` into ``tree`` (False: too few).

    Path-wise strategies sample with the same request (``stable_seed(seed, problem, "responses")``,
    sample ``i`` seeded ``+i``), so the samples of a majority run ARE the samples a best_of_n run
    with the same format, temperature, top_p, max_tokens and base seed would draw; copying them
    saves generating them twice. Their policy compute is charged here too (tokens of the copied
    samples; prompt tokens, engine calls and wall time pro rata), so compute stays honest.
    """
    kids = samples(prior)
    if prior.error is not None or len(kids) < n or prior.format != tree.trace.format:
        return False
    if any(prior.config.get(k) != tree.trace.config.get(k) for k in SAMPLING_FIELDS):
        return False
    for k in kids[:n]:
        tree.add(
            0,
            k.text,
            kind=k.kind,
            finish_reason=k.finish_reason,
            generated_tokens=k.generated_tokens,
            final=k.final,
            answer=k.answer,
            note=k.note,
        )
    c, pc, share = tree.trace.compute, prior.compute, n / len(kids)
    c.generated_tokens += sum(k.generated_tokens for k in kids[:n])
    c.prompt_tokens += round(pc.prompt_tokens * share)
    c.samples += n
    c.engine_calls += pc.engine_calls
    tree.reused_wall_s += pc.wall_time_s / max(1, pc.batch_size) * share  # this problem's share
    tree.trace.notes.append(
        f"samples reused from the {prior.strategy} trace of this run (same requests and seeds); "
        "their generation compute is counted here"
    )
    return True


# -- scoring and judging, batched across problems -------------------------------------------------


def score_nodes(
    scorer: StepScorer, items: Sequence[tuple[Tree, int]], how: str = "min", *, split_responses: bool = False
) -> list[float | None]:
    """Score the path ending at each (tree, node) in ONE scorer call; set ``node.score`` to the
    aggregated path score and charge each tree's scorer compute. Returns the aggregated scores.

    The steps of a path are its node texts; with ``split_responses`` (whole-response nodes) the
    format's parser cuts the response into steps first.
    """
    if not items:
        return []
    queries = []
    for tree, node_id in items:
        steps = tree.history(node_id)
        if split_responses:
            steps = [s.text for s in tree.fmt.parse(tree.text(node_id)).steps] or steps
        queries.append(ScoreQuery(tree.problem, steps))
    results = scorer.score(queries)
    if len(results) != len(queries):
        raise RuntimeError(f"scorer {scorer.name} returned {len(results)} results for {len(queries)} queries")
    out: list[float | None] = []
    for (tree, node_id), res in zip(items, results):
        agg = aggregate(res.scores, how)
        node = tree.node(node_id)
        node.score = agg
        own = res.scores[-1] if res.scores else None
        node.step_score = None if own is None or own != own else float(own)  # NaN -> unknown
        out.append(agg)
    charge_call((tree.trace.compute, res) for (tree, _), res in zip(items, results))
    return out


def grow(
    engine: Engine,
    frontier: Sequence[tuple[Tree, int]],
    *,
    n: int,
    temperature: float,
    top_p: float,
    seed: int,
    depth: int,
) -> list[list[int]]:
    """Sample ``n`` next steps under each (tree, node) in ONE engine call.

    Valid candidates become children (``final`` and ``answer`` set when they end the response);
    invalid ones are kept in the tree as rejected. Returns the valid children per frontier entry
    (an entry whose path is already complete gets ``[]``).
    """
    jobs: list[Job | None] = []
    for tree, node_id in frontier:
        spec = tree.fmt.next_step(tree.text(node_id))
        if spec is None:
            jobs.append(None)
            continue
        jobs.append(
            Job(
                tree,
                node_id,
                spec,
                n=n,
                temperature=temperature,
                top_p=top_p,
                seed=stable_seed(seed, tree.problem.id, depth, node_id),
            )
        )
    expand(engine, [j for j in jobs if j is not None])
    out: list[list[int]] = []
    for (tree, node_id), job in zip(frontier, jobs):
        kids: list[int] = []
        if job is None:
            out.append(kids)
            continue
        history = tree.history(node_id)
        seen: set[str] = set()
        for c in job.results:
            if c.finish_reason == "error":
                tree.trace.error = tree.trace.error or c.error
                continue
            text, note = tree.fmt.finish_step(job.spec, c)
            reason = tree.fmt.validate_step(text, history)
            ended = c.finish_reason == "stop" and c.stop_str is None
            common = {
                "kind": job.spec.kind,
                "finish_reason": c.finish_reason,
                "generated_tokens": c.generated_tokens,
            }
            if reason is not None:
                tree.add(node_id, text, note=f"rejected: {reason}", **common)
                continue
            final = tree.fmt.is_final(text, job.spec.kind) or (ended and tree.fmt.eos_ends_response)
            if text in seen:
                note = "; ".join(filter(None, [note, "duplicate of a sibling"]))
            seen.add(text)
            node = tree.add(node_id, text, final=final, note=note, **common)
            if final:
                node.answer = tree.fmt.answer(tree.text(node.id), tree.problem)
            kids.append(node.id)
        out.append(kids)
    return out


def force_answers(engine: Engine, items: Sequence[tuple[Tree, int, str]], seed: int) -> list[int]:
    """The direct-answer fallback: under each (tree, node, reason) append the format's final-answer
    opener and ask for the answer greedily, in ONE engine call. Returns the new (final) node ids."""
    jobs = [
        Job(
            t,
            nid,
            t.fmt.answer_opener(t.text(nid)),
            temperature=0.0,
            seed=stable_seed(seed, t.problem.id, "answer"),
        )
        for t, nid, _ in items
    ]
    expand(engine, jobs)
    out = []
    for job, (_, _, reason) in zip(jobs, items):
        c = job.results[0]
        tree = job.tree
        if c.finish_reason == "error":
            tree.trace.error = tree.trace.error or c.error
            out.append(job.node_id)
            continue
        text, _ = tree.fmt.finish_step(job.spec, c)
        node = tree.add(
            job.node_id,
            text,
            kind=job.spec.kind,
            finish_reason=c.finish_reason,
            generated_tokens=c.generated_tokens,
            final=True,
            note=f"direct-answer fallback: {reason}",
        )
        node.answer = tree.fmt.answer(tree.text(node.id), tree.problem)
        tree.trace.notes.append(f"direct-answer fallback: {reason}")
        out.append(node.id)
    return out


#: Unknown (``None``) scores rank as this neutral value: below a step known right, above one known wrong.
NEUTRAL_SCORE = 0.5


def rank_key(score: float | None) -> float:
    return NEUTRAL_SCORE if score is None else score


def path_rank(tree: Tree, node_id: int) -> tuple[float, ...]:
    """How step-level search ranks the path ending at ``node_id`` (larger is better).

    First the aggregated path score (``node.score``), then the steps' own scores from the newest
    step back to the first. With ``min`` every child of a beam whose own score is above the prefix's
    minimum ties on the aggregate; the tie then goes to the child the scorer liked best, never to
    sampling order. Unknown scores rank as :data:`NEUTRAL_SCORE`.
    """
    own = [rank_key(tree.node(i).step_score) for i in reversed(tree.path_to(node_id)[1:])]
    return (rank_key(tree.node(node_id).score), *own)


def one_response(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: SearchConfig, name: str, *, direct: bool
) -> list[Trace]:
    """One sample per problem (greedy by default), in one engine call: ``direct`` and ``cot``."""
    t0 = time.perf_counter()
    trees = [Tree(p, name, fmt, config) for p in problems]
    sample_responses(
        engine,
        trees,
        n=1,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
        max_tokens=config.max_tokens,
        direct=direct,
    )
    for tree in trees:
        kids = samples(tree.trace)
        if kids:
            tree.choose(kids[0].id, kids[0].answer)
    return finish_traces(trees, t0)
