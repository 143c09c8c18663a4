"""``rollout-labels`` (Math-Shepherd): step labels from Monte-Carlo completions by a policy engine.

For every step prefix of a chain, ``k`` completions continue the solution from after that step;
the step's soft label is the share of completions whose answer grades right, its hard label
whether any does (Math-Shepherd's "hard estimation"). A final step that states an answer is
labelled by grading that answer (no rollout needed).

The chain is ``meta[source]`` (as in ``negatives``); an item without one gets a chain sampled
greedily from the policy first (Math-Shepherd labels the policy's own solutions), one engine call
for the batch. Steps keep their text as written (no ``Step k:`` relabelling): a PRM trained on the
rows then reads exactly what a search scores (the ``atomic`` format's parse of a response, whose
final ``To sum up, ...`` step has no number). The rollouts use the search machinery (``search.base``: a ``Tree`` per item holding
the chain in the ``atomic`` format, one ``Job`` with ``n=k`` per prefix, ``expand``): ONE engine
call for all prefixes of all items of the batch (``batched=false``: one call per prefix, the
baseline of ``bench/bench_annotate.py``).

:func:`label_chains` labels given chains outside the annotate runner (the capability analysis's
``--scorer rollouts`` scores the steps of eval runs with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from slowthink.annotate.modes.base import Mode, ModeContext, ModeOptions, engine_error
from slowthink.annotate.modes.negatives import chain_of
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import final_answer_of
from slowthink.engines import Engine
from slowthink.formats.atomic import AtomicFormat
from slowthink.formats.base import StepSpec
from slowthink.grading import grade
from slowthink.search.base import Job, SearchConfig, Tree, expand, stable_seed
from slowthink.types import Problem


@dataclass
class RolloutOptions(ModeOptions):
    k: int = 8
    """Completions per step prefix."""
    temperature: float = 0.7
    max_tokens: int = 256
    """Token budget of one completion (the rest of a solution)."""
    source: str = "steps"
    """``meta`` field holding the chain; without one the policy writes it (greedy)."""
    batched: bool = True
    """One engine call for all prefixes of the batch (False: one call per prefix)."""
    search: str = "all"
    """``all``: every prefix (Math-Shepherd); ``binary``: OmegaPRM's binary search for the first
    wrong step (log2 of the steps rounds, one engine call per round for the batch)."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_tokens < 1:
            raise ValueError("k and max_tokens must be >= 1")
        if self.search not in ("all", "binary"):
            raise ValueError(f"search must be all or binary, got {self.search!r}")


class RolloutLabelsMode(Mode):
    name = "rollout-labels"
    Options = RolloutOptions
    needs_teacher = False
    needs_policy = True

    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        opts: RolloutOptions = ctx.options
        fmt = AtomicFormat()
        config = SearchConfig(n=opts.k, temperature=opts.temperature, seed=ctx.seed)
        anns = [self.new(p, ctx) for p in problems]
        trees = {id(a): Tree(a.problem, self.name, fmt, config) for a in anns}
        chains = {id(a): chain_of(a.problem, opts.source, relabel=False) for a in anns}
        self._write_chains([a for a in anns if not chains[id(a)]], trees, chains, fmt, ctx)
        nodes: dict[int, list[int]] = {}
        for a in anns:
            if a.status == "error":
                continue
            if not chains[id(a)]:
                a.reject("no chain: the policy wrote no steps")
                continue
            node, ids = 0, []
            for step in chains[id(a)]:
                node = trees[id(a)].add(node, step + "\n", kind="step").id
                ids.append(node)
            nodes[id(a)] = ids
        live = [a for a in anns if id(a) in nodes]
        hits: dict[int, dict[int, list[bool]]] = {id(a): {} for a in live}
        if opts.search == "all":
            self._measure(
                [(a, d) for a in live for d in range(1, len(chains[id(a)]) + 1)],
                trees,
                chains,
                nodes,
                hits,
                opts,
                ctx,
            )
        else:  # OmegaPRM: binary search for the first step whose prefix no rollout rescues
            bounds = {id(a): (0, len(chains[id(a)])) for a in live}
            while todo := [
                (a, (lo + hi) // 2 + 1)
                for a in live
                if a.status != "error"
                for lo, hi in [bounds[id(a)]]
                if lo < hi
            ]:
                self._measure(todo, trees, chains, nodes, hits, opts, ctx)
                for a, depth in todo:
                    if a.status == "error":
                        continue
                    lo, hi = bounds[id(a)]
                    bounds[id(a)] = (depth, hi) if any(hits[id(a)][depth]) else (lo, depth - 1)
            for a in live:  # the chain up to its first wrong step (all of it when none is wrong)
                first_wrong = bounds[id(a)][0] + 1
                chains[id(a)] = chains[id(a)][:first_wrong]
                a.extra["first_wrong_step"] = first_wrong if first_wrong in hits[id(a)] else None
        for a in anns:
            _charge(a, trees[id(a)])
            if a.status == "rejected" and not a.reasons:
                self._label(a, chains[id(a)], hits[id(a)], soft=opts.search == "all")
        return anns

    def _measure(
        self,
        todo: list[tuple[Annotation, int]],
        trees: dict,
        chains: dict,
        nodes: dict,
        hits: dict[int, dict[int, list[bool]]],
        opts: RolloutOptions,
        ctx: ModeContext,
    ) -> None:
        """Whether each completion reaches the gold answer, for the prefixes ``(annotation, depth)``:
        one engine call for all of them (``batched``), or one per prefix. A final step that states
        an answer needs no rollout: its own answer is graded."""
        fmt = AtomicFormat()
        jobs: list[Job] = []
        owner: dict[int, tuple[Annotation, int]] = {}
        for a, depth in todo:
            chain = chains[id(a)]
            if depth == len(chain) and final_answer_of(chain[-1:]) is not None:
                answer = final_answer_of(chain[-1:])
                hits[id(a)][depth] = [grade(answer, a.problem).correct]
                continue
            spec = StepSpec(kind="response", opener="", stop=[], max_tokens=opts.max_tokens)
            seed = stable_seed(ctx.seed, a.id, "rollout", depth)
            jobs.append(
                Job(
                    trees[id(a)],
                    nodes[id(a)][depth - 1],
                    spec,
                    n=opts.k,
                    temperature=opts.temperature,
                    seed=seed,
                )
            )
            owner[id(jobs[-1])] = (a, depth)
        for group in [jobs] if opts.batched else [[j] for j in jobs]:
            expand(ctx.policy, group)
        for job in jobs:
            a, depth = owner[id(job)]
            ok = [c for c in job.results if c.finish_reason != "error"]
            if not ok:
                engine_error(a, next((c.error for c in job.results if c.error), None) or "engine error")
                continue
            prefix = job.tree.text(job.node_id)
            hits[id(a)][depth] = [self._correct(fmt, prefix + c.text, a.problem) for c in ok]

    def _write_chains(
        self, anns: list[Annotation], trees: dict, chains: dict, fmt: AtomicFormat, ctx: ModeContext
    ) -> None:
        jobs = []
        for a in anns:
            spec = fmt.full_spec()
            jobs.append(
                Job(trees[id(a)], 0, spec, n=1, temperature=0.0, seed=stable_seed(ctx.seed, a.id, "chain"))
            )
        expand(ctx.policy, jobs)
        for a, job in zip(anns, jobs):
            c = job.results[0]
            if c.finish_reason == "error":
                engine_error(a, c.error or "engine error")
                continue
            parsed = fmt.parse(c.text)
            chains[id(a)] = [s.text for s in parsed.steps]
            a.method = "policy chain"
            a.response = c.text
        for a in anns:  # the chain's own sample is not a rollout: a fresh tree holds the labelled chain
            _charge(a, trees[id(a)])
            trees[id(a)] = Tree(a.problem, self.name, fmt, SearchConfig(seed=ctx.seed))

    @staticmethod
    def _correct(fmt: AtomicFormat, text: str, problem: Problem) -> bool:
        answer = fmt.answer(text, problem)
        return answer is not None and grade(answer, problem).correct

    @staticmethod
    def _label(a: Annotation, chain: list[str], hits: dict[int, list[bool]], soft: bool) -> None:
        """Soft label = share of right rollouts, hard = any (``search=all``); with ``binary`` the
        steps before the first wrong one are ``+`` (a measured later prefix rescued them) and only
        hard labels are kept (the rollout shares measured are in ``extra``)."""
        if soft:
            shares = [sum(hits[d]) / len(hits[d]) for d in range(1, len(chain) + 1)]
            a.soft_labels, a.labels = shares, [x > 0 for x in shares]
        else:
            a.labels = [any(hits[d]) if d in hits else True for d in range(1, len(chain) + 1)]
        a.steps = list(chain)
        a.answer = final_answer_of(chain[-1:])
        a.status, a.method = "accepted", a.method or "rollout"
        a.extra["rollouts_right"] = {str(d): sum(h) for d, h in sorted(hits.items())}


def _charge(a: Annotation, tree: Tree) -> None:
    """Add the policy compute the tree recorded (``expand`` charges trees) to the annotation's usage."""
    c = tree.trace.compute
    a.usage.prompt_tokens += c.prompt_tokens
    a.usage.generated_tokens += c.generated_tokens
    a.usage.calls += c.engine_calls


def label_chains(
    chains: Sequence[tuple[Problem, Sequence[str]]],
    policy: Engine,
    options: RolloutOptions | None = None,
    seed: int = 0,
) -> list[Annotation]:
    """Rollout labels of the given ``(problem, steps)`` chains, as :class:`RolloutLabelsMode` makes
    them (one engine call for every prefix of every chain with ``batched``): an accepted annotation
    has one label (and soft label with ``search=all``) per step, step ``i``'s prefix ending with
    step ``i``; an engine failure gives an ``error`` annotation. A problem needs its gold answer."""
    opts = replace(options or RolloutOptions(), source="steps")
    problems = [replace(p, meta={**p.meta, "steps": list(steps)}) for p, steps in chains]
    return RolloutLabelsMode().run(problems, ModeContext(opts, seed=seed, policy=policy))
