"""``quick``: AtomThink's QuickThink, a greedy rollout one step per engine call.

Each depth sends one request per unfinished problem in one engine call. A step that fails the
format's checks (empty, repeated sentences, near-copy of the previous step, too long, several
``Step`` markers) is kept in the tree as rejected and re-sampled with a higher temperature, for all
such problems together. When no final answer appears within ``max_depth`` steps, after
``max_retries`` rejected re-samples, or when the model stops on its own, the format's final-answer
opener is appended and the answer is asked for directly (the direct-answer fallback).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import (
    Job,
    SearchConfig,
    Tree,
    expand,
    finish_traces,
    force_answers,
    stable_seed,
)
from slowthink.types import Problem, Trace


@dataclass
class QuickConfig(SearchConfig):
    temperature: float = 0.0
    """Greedy by default; re-samples of rejected steps raise it by ``temperature_bump``."""
    max_retries: int = 3
    """Re-samples of a rejected step before falling back to a direct answer."""
    temperature_bump: float = 0.3
    """Added to the temperature at each re-sample (capped at 1.0)."""


@dataclass
class _State:
    tree: Tree
    node: int = 0
    done: bool = False
    fallback: str | None = None


def _step_round(engine: Engine, states: list[_State], config: QuickConfig, depth: int) -> None:
    """Advance every state by one valid step (or mark it for the fallback)."""
    pending = list(states)
    for attempt in range(config.max_retries + 1):
        if not pending:
            return
        temp = (
            min(1.0, config.temperature + attempt * config.temperature_bump)
            if attempt
            else config.temperature
        )
        jobs = []
        for st in pending:
            spec = st.tree.fmt.next_step(st.tree.text(st.node))
            if spec is None:
                st.done = True
                continue
            seed = stable_seed(config.seed, st.tree.problem.id, depth, attempt)
            jobs.append((st, Job(st.tree, st.node, spec, temperature=temp, top_p=config.top_p, seed=seed)))
        expand(engine, [j for _, j in jobs])
        pending = []
        for st, job in jobs:
            tree, comp = st.tree, job.results[0]
            if comp.finish_reason == "error":
                tree.trace.error = comp.error
                st.done = True
                continue
            text, note = tree.fmt.finish_step(job.spec, comp)
            ended = comp.finish_reason == "stop" and comp.stop_str is None
            reason = tree.fmt.validate_step(text, tree.history(st.node))
            if reason is not None:
                tree.add(
                    st.node,
                    text,
                    kind=job.spec.kind,
                    finish_reason=comp.finish_reason,
                    generated_tokens=comp.generated_tokens,
                    note=f"rejected: {reason}",
                )
                if ended and not text.strip():
                    st.fallback = "the model stopped without an answer"
                elif attempt == config.max_retries:
                    st.fallback = f"step still invalid after {config.max_retries} re-samples ({reason})"
                else:
                    pending.append(st)
                continue
            final = tree.fmt.is_final(text, job.spec.kind)
            node = tree.add(
                st.node,
                text,
                kind=job.spec.kind,
                finish_reason=comp.finish_reason,
                generated_tokens=comp.generated_tokens,
                final=final,
                note=note,
            )
            st.node = node.id
            tree.commit(node.id)
            if final:
                node.answer = tree.fmt.answer(tree.text(node.id), tree.problem)
                st.done = True


def run(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: QuickConfig, scorer=None
) -> list[Trace]:
    t0 = time.perf_counter()
    states = [_State(Tree(p, "quick", fmt, config)) for p in problems]
    for depth in range(config.max_depth):
        live = [s for s in states if not s.done and s.fallback is None]
        if not live:
            break
        _step_round(engine, live, config, depth)
    for s in states:
        if not s.done and s.fallback is None and s.tree.trace.error is None:
            s.fallback = f"no final answer within {config.max_depth} steps"
    fallback = [s for s in states if s.fallback is not None and s.tree.trace.error is None]
    for s, nid in zip(
        fallback, force_answers(engine, [(s.tree, s.node, s.fallback) for s in fallback], config.seed)
    ):
        s.node = nid
    for s in states:
        node = s.tree.node(s.node)
        s.tree.choose(
            s.node, node.answer if node.final else s.tree.fmt.answer(s.tree.text(s.node), s.tree.problem)
        )
    return finish_traces([s.tree for s in states], t0)
