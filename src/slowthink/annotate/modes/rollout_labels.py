"""``rollout-labels`` (Math-Shepherd): step labels from Monte-Carlo completions by a policy engine.

For every step prefix of a chain, ``k`` completions continue the solution from after that step;
the step's soft label is the share of completions whose answer grades right, its hard label
whether any does (Math-Shepherd's "hard estimation"). A final step that states an answer is
labelled by grading that answer (no rollout needed).

The chain is ``meta[source]`` (as in ``negatives``); an item without one gets a chain sampled
greedily from the policy first (Math-Shepherd labels the policy's own solutions), one engine call
for the batch. The rollouts use the search machinery (``search.base``: a ``Tree`` per item holding
the chain in the ``atomic`` format, one ``Job`` with ``n=k`` per prefix, ``expand``): ONE engine
call for all prefixes of all items of the batch (``batched=false``: one call per prefix, the
baseline of ``bench/bench_annotate.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.annotate.modes.base import Mode, ModeContext, ModeOptions, engine_error
from slowthink.annotate.modes.negatives import chain_of
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import final_answer_of, label_steps
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

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_tokens < 1:
            raise ValueError("k and max_tokens must be >= 1")


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
        chains = {id(a): chain_of(a.problem, opts.source) for a in anns}
        self._write_chains([a for a in anns if not chains[id(a)]], trees, chains, fmt, ctx)
        jobs: list[Job] = []
        owner: dict[int, Annotation] = {}
        for a in anns:
            if a.status == "error":
                continue
            tree, chain = trees[id(a)], chains[id(a)]
            if not chain:
                a.reject("no chain: the policy wrote no steps")
                continue
            node = 0
            for i, step in enumerate(chain):
                node = tree.add(node, step + "\n", kind="step").id
                if i < len(chain) - 1 or final_answer_of([step]) is None:
                    spec = StepSpec(kind="response", opener="", stop=[], max_tokens=opts.max_tokens)
                    seed = stable_seed(ctx.seed, a.id, "rollout", i + 1)
                    jobs.append(Job(tree, node, spec, n=opts.k, temperature=opts.temperature, seed=seed))
                    owner[id(jobs[-1])] = a
        if opts.batched:
            expand(ctx.policy, jobs)
        else:
            for job in jobs:
                expand(ctx.policy, [job])
        results: dict[int, dict[int, list[bool]]] = {}
        for job in jobs:
            a = owner[id(job)]
            ok = [c for c in job.results if c.finish_reason != "error"]
            if not ok:
                engine_error(a, next((c.error for c in job.results if c.error), None) or "engine error")
                continue
            prefix = job.tree.text(job.node_id)
            hits = [self._correct(fmt, prefix + c.text, a.problem) for c in ok]
            results.setdefault(id(a), {})[job.tree.node(job.node_id).depth] = hits
        for a in anns:
            _charge(a, trees[id(a)])
            if a.status == "rejected" and not a.reasons:
                self._label(a, chains[id(a)], results.get(id(a), {}))
        return anns

    def _write_chains(self, anns: list[Annotation], trees: dict, chains: dict, fmt: AtomicFormat,
                      ctx: ModeContext) -> None:
        jobs = []
        for a in anns:
            spec = fmt.full_spec()
            jobs.append(Job(trees[id(a)], 0, spec, n=1, temperature=0.0, seed=stable_seed(ctx.seed, a.id, "chain")))
        expand(ctx.policy, jobs)
        for a, job in zip(anns, jobs):
            c = job.results[0]
            if c.finish_reason == "error":
                engine_error(a, c.error or "engine error")
                continue
            parsed = fmt.parse(c.text)
            chains[id(a)] = label_steps([s.text for s in parsed.steps])
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
    def _label(a: Annotation, chain: list[str], hits: dict[int, list[bool]]) -> None:
        soft: list[float] = []
        for depth, step in enumerate(chain, 1):
            if depth in hits:
                soft.append(sum(hits[depth]) / len(hits[depth]))
            else:  # the final step: its own answer decides
                answer = final_answer_of([step])
                soft.append(1.0 if answer is not None and grade(answer, a.problem).correct else 0.0)
        a.steps, a.soft_labels = list(chain), soft
        a.labels = [s > 0 for s in soft]
        a.answer = final_answer_of(chain[-1:])
        a.status, a.method = "accepted", a.method or "rollout"
        a.extra["rollouts_right"] = {str(d): sum(h) for d, h in sorted(hits.items())}


def _charge(a: Annotation, tree: Tree) -> None:
    """Add the policy compute the tree recorded (``expand`` charges trees) to the annotation's usage."""
    c = tree.trace.compute
    a.usage.prompt_tokens += c.prompt_tokens
    a.usage.generated_tokens += c.generated_tokens
    a.usage.calls += c.engine_calls
