"""Deriving smaller N from one path-wise run: subsets, selection rules, token accounting."""

from __future__ import annotations

import pytest

from slowthink.evaluate.subsample import derive, subsets
from slowthink.formats import get_format
from slowthink.search import solve
from slowthink.search.knockout import bracket_order
from slowthink.search.majority import vote
from slowthink.types import Compute, Node, Problem, Trace
from tests.evaluate.eval_doubles import Judge, ScriptedEngine, StepScorer

P = Problem(id="p", question="What is 2 + 3?", answer="5")


def make_trace(
    answers, *, strategy="majority", tokens=None, scores=None, config=None, prompt=100, scorer=(0, 0)
) -> Trace:
    t = Trace(problem_id="p", strategy=strategy, format="atomic", config=config or {})
    t.nodes.append(Node(0, None))
    for i, a in enumerate(answers, 1):
        t.nodes.append(
            Node(
                i,
                0,
                text=f"The answer is {a}",
                depth=1,
                kind="response",
                answer=a,
                generated_tokens=tokens[i - 1] if tokens else 10,
                score=scores[i - 1] if scores else None,
            )
        )
    t.compute = Compute(
        prompt_tokens=prompt,
        generated_tokens=sum(n.generated_tokens for n in t.nodes),
        scorer_prompt_tokens=scorer[0],
        scorer_generated_tokens=scorer[1],
        engine_calls=1,
    )
    return t


def test_subsets_deterministic_sorted_distinct():
    s = subsets(16, 4, 5, "p")
    assert len(s) == 5
    assert all(len(x) == 4 and x == sorted(x) and len(set(x)) == 4 and max(x) < 16 for x in s)
    assert s == subsets(16, 4, 5, "p")
    assert s != subsets(16, 4, 5, "q")  # another problem, other subsets
    assert subsets(3, 8, 5, "p") == [[0, 1, 2]]  # k >= size: the whole pool, once


def test_full_k_is_the_vote_of_all_samples():
    t = make_trace(["3", "5", "5", "3", "5"], tokens=[10, 20, 30, 40, 50])
    (d,) = derive(t, P, 5, seeds=3)
    assert d.answer == "5" and d.winner == 2  # first sample of the most voted answer
    assert d.policy_generated_tokens == 150 and d.policy_prompt_tokens == 100


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_majority_subsets_rerun_vote_and_count_their_tokens(k):
    t = make_trace(
        ["3", "5", "5", None, "5", "3"], tokens=[11, 12, 13, 14, 15, 16], prompt=600, scorer=(60, 6)
    )
    by_id = {n.id: n for n in t.nodes}
    ds = derive(t, P, k, seeds=4)
    assert len(ds) == 4
    for d in ds:
        nodes = [by_id[i] for i in d.nodes]
        assert len(nodes) == k and d.nodes == sorted(d.nodes)
        winner, _ = vote(nodes, P)
        assert d.answer == (winner.answer if winner else None)
        assert d.policy_generated_tokens == sum(n.generated_tokens for n in nodes)  # exact
        assert d.policy_prompt_tokens == pytest.approx(600 * k / 6)  # proportional
        assert d.scorer_prompt_tokens == pytest.approx(60 * k / 6)


def test_majority_k1_mean_is_the_fraction_of_right_samples():
    t = make_trace(["5", "5", "5", "4", "6"])  # 3 of 5 right
    ds = derive(t, P, 1, seeds=500)
    assert all(d.answer == t.nodes[d.nodes[0]].answer for d in ds)
    assert sum(d.answer == "5" for d in ds) / len(ds) == pytest.approx(0.6, abs=0.06)


def test_best_of_n_score_picks_best_scored_answered_sample():
    t = make_trace(
        ["1", "2", "3", None],
        strategy="best_of_n",
        scores=[0.2, 0.9, 0.5, 0.99],
        config={"select": "score"},
        scorer=(400, 40),
    )
    (full,) = derive(t, P, 4, seeds=3)
    assert full.answer == "2"  # the unanswered 0.99 sample ranks below any answered one
    for d in derive(t, P, 2, seeds=6):
        nodes = [t.nodes[i] for i in d.nodes]
        answered = [n for n in nodes if n.answer is not None]
        best = max(answered, key=lambda n: n.score) if answered else nodes[0]
        assert d.winner == best.id
        assert d.scorer_prompt_tokens == pytest.approx(200) and d.scorer_generated_tokens == pytest.approx(20)


def test_best_of_n_weighted_sums_scores_per_answer():
    t = make_trace(
        ["7", "7", "9"], strategy="best_of_n", scores=[0.4, 0.45, 0.7], config={"select": "weighted"}
    )
    (d,) = derive(t, P, 3, seeds=3)
    assert d.answer == "7" and d.winner == 2  # 0.85 beats 0.7; best-scored sample of "7"


def test_empty_pool_gives_no_answer():
    t = make_trace([])
    (d,) = derive(t, P, 4, seeds=3)
    assert d.answer is None and d.policy_generated_tokens == 0


PROBLEMS = [Problem(id=f"q{i}", question=f"What is {i} + {i + 2}?", answer=str(2 * i + 2)) for i in range(3)]


@pytest.mark.parametrize(
    "strategy, opts",
    [("majority", {}), ("best_of_n", {"select": "score"}), ("best_of_n", {"select": "weighted"})],
)
def test_derive_at_full_n_reproduces_the_strategy(strategy, opts):
    traces = solve(
        PROBLEMS,
        ScriptedEngine(p_right=0.5),
        get_format("atomic"),
        strategy,
        scorer=StepScorer(),
        n=6,
        **opts,
    )
    for t, p in zip(traces, PROBLEMS):
        (d,) = derive(t, p, 6, seeds=3)
        assert d.answer == t.answer and d.winner == t.path[-1]


def test_judge_knockout_blocks_replay_recorded_decisions():
    traces = solve(
        PROBLEMS,
        ScriptedEngine(p_right=0.3),
        get_format("atomic"),
        "best_of_n",
        scorer=Judge(),
        n=8,
        select="judge",
        seed=3,
    )
    for t, p in zip(traces, PROBLEMS):
        assert len(t.decisions) == 7
        (full,) = derive(t, p, 8, seeds=3)
        assert full.answer == t.answer and full.scorer_prompt_tokens == t.compute.scorer_prompt_tokens
        order = bracket_order(t.decisions, [n.id for n in t.nodes if n.parent == 0])
        assert sorted(order) == list(range(1, 9))
        for k, blocks in ((1, 8), (2, 4), (4, 2)):
            ds = derive(t, p, k, seeds=3)
            assert len(ds) == blocks
            assert sorted(i for d in ds for i in d.nodes) == list(range(1, 9))  # the blocks tile the pool
            for d in ds:
                assert d.winner in d.nodes
                # the block winner won every recorded match it played against a block member
                for dec in t.decisions:
                    if {dec["a"], dec["b"]} <= set(d.nodes) and d.winner in (dec["a"], dec["b"]):
                        assert dec["winner"] == d.winner
                # the scripted judge prefers a right answer: a block with one wins with one
                right = [i for i in d.nodes if t.nodes[i].answer == p.answer]
                assert (d.answer == p.answer) == bool(right)
                assert d.scorer_prompt_tokens == pytest.approx(t.compute.scorer_prompt_tokens * (k - 1) / 7)
