"""best_of_n, step_beam / greedy_step, stage_beam and sentence_beam: batching, selection and trees.

The scripted engine (``tests/doubles.py``) and scorers are in-process doubles for pure search logic; the same strategies
run on the real embedded model in ``test_strategies_model.py``.
"""

from __future__ import annotations

import re

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.formats import get_format
from slowthink.scorers.base import ScoreResult, Verdict
from slowthink.search import solve
from slowthink.types import Problem, SlowthinkError
from tests.doubles import AtomicWriter, ScriptedEngine, steps_done


def _seed(r, i: int) -> int:
    return (r.seed or 0) + i


def _word(r, i: int) -> str:
    return "good" if _seed(r, i) % 2 == 1 else "bad"


def _answer(r, i: int) -> str:
    """A whole response's answer follows its seed; after steps, the answer follows the path taken."""
    if steps_done(r.prefix):
        return "5" if "bad" in r.prefix else "7"
    return "7" if _word(r, i) == "good" else "5"


ATOMIC = AtomicWriter(lambda r, i, k: f"{_word(r, i)} {_seed(r, i) if r.stop else k + 1}.", _answer)


def seeded_policy(r, i: int) -> str:
    """Quality of a sample depends on its seed: odd seeds write 'good' steps leading to 7,
    even seeds write 'bad' steps leading to 5. Works for atomic and stages formats."""
    if "<CONCLUSION>" in r.prefix[-14:]:
        return f"{'5' if 'bad' in r.prefix else '7'} </CONCLUSION>"
    if r.prefix.rstrip().endswith(">"):  # a stage opener
        stage = re.findall(r"<(\w+)>\s*$", r.prefix)[-1]
        return f"{_word(r, i)} {stage.lower()} </{stage}>"
    return ATOMIC(r, i)


def scripted() -> ScriptedEngine:
    return ScriptedEngine(seeded_policy, prompt_tokens=5)


class GoodScorer:
    """Scores a step 1 if it says 'good', 0 if 'bad', None otherwise; counts its calls."""

    name = "good"

    def __init__(self):
        self.calls = 0

    def _s(self, step: str):
        return 1.0 if "good" in step else 0.0 if "bad" in step else None

    def score(self, queries):
        self.calls += 1
        return [
            ScoreResult([self._s(s) for s in q.steps], prompt_tokens=2, generated_tokens=1, calls=1)
            for q in queries
        ]


class GoodJudge(GoodScorer):
    name = "good-judge"

    def compare(self, comps):
        self.calls += 1
        return [
            Verdict(0 if "good" in c.a or "bad" in c.b else 1, prompt_tokens=3, generated_tokens=1, calls=1)
            for c in comps
        ]


def problems(k=3):
    return [Problem(id=f"q{i}", question=f"{i}?", answer="7") for i in range(k)]


@pytest.mark.parametrize("select", ["score", "weighted", "judge"])
def test_best_of_n_picks_the_good_sample(select):
    eng, judge = RecordingEngine(scripted()), GoodJudge()
    traces = solve(problems(), eng, get_format("atomic"), "best_of_n", scorer=judge, n=4, select=select)
    assert eng.n_calls == 1
    for t in traces:
        assert t.answer == "7" and "good" in t.response
        assert t.compute.scorer_calls >= 1 and t.compute.scorer_prompt_tokens > 0
    if select == "judge":
        # 4 candidates: N-1 = 3 comparisons, in 2 rounds (one judge call per round for all problems)
        assert judge.calls == 2 and all(len(t.decisions) == 3 for t in traces)
    else:
        assert judge.calls == 1
    if select == "weighted":
        assert traces[0].votes == {"7": 2.0, "5": 0.0}


@pytest.mark.parametrize("strategy, beam", [("step_beam", 2), ("greedy_step", None)])
def test_step_beam(strategy, beam):
    eng, scorer = RecordingEngine(scripted()), GoodScorer()
    opts = {"beam": beam} if beam else {}
    traces = solve(problems(), eng, get_format("atomic"), strategy, scorer=scorer, n=3, **opts)
    # depth 0, 1: steps; depth 2: the final line -> 3 engine calls and 3 scorer calls for the batch
    assert eng.n_calls == 3 and scorer.calls == 3
    width = beam or 1
    assert [c.n_requests for c in eng.calls] == [3, 3 * width, 3 * width]
    for t in traces:
        assert t.answer == "7" and t.strategy == strategy
        assert all("good" in n.text for n in t.steps[:-1])
        assert t.steps[-1].final and t.steps[-1].score == 1.0
        assert t.compute.samples == len(t.nodes) - 1


def test_step_beam_answers_paths_the_model_ended_without_an_answer():
    """A step that ends the response (EOS, no final-answer line) gets the direct-answer fallback."""

    def ends_early(r, i: int) -> str:
        return (
            " 7\n" if r.prefix.endswith("final answer is:") else f"The good answer is seven ({_seed(r, i)})."
        )

    eng = RecordingEngine(ScriptedEngine(ends_early, prompt_tokens=5))
    traces = solve(problems(2), eng, get_format("atomic"), "step_beam", scorer=GoodScorer(), n=2, beam=2)
    assert eng.n_calls == 2  # the steps, then ONE fallback call for every ended path of the batch
    for t in traces:
        assert t.answer == "7" and t.steps[-1].kind == "answer"
        assert any("ended without a final answer" in (n.note or "") for n in t.nodes)


def test_step_beam_needs_a_scorer():
    with pytest.raises(
        SlowthinkError, match="strategy 'step_beam' needs a scorer with step scores; no scorer was given"
    ):
        solve(problems(1), scripted(), get_format("atomic"), "step_beam")


def test_stage_beam_knockout():
    eng, judge = RecordingEngine(scripted()), GoodJudge()
    traces = solve(problems(), eng, get_format("stages"), "stage_beam", scorer=judge, n=4)
    assert eng.n_calls == 4  # one per stage for the whole batch
    assert judge.calls == 4 * 2  # 4 stages x 2 knockout rounds (4 candidates)
    for t in traces:
        assert [n.kind for n in t.steps] == ["summary", "caption", "reasoning", "conclusion"]
        assert t.answer == "7"
        assert len(t.decisions) == 4 * 3  # N-1 comparisons per stage
        assert {d["stage"] for d in t.decisions} == {"summary", "caption", "reasoning", "conclusion"}


def test_stage_beam_score_variant():
    traces = solve(
        problems(2), scripted(), get_format("stages"), "stage_beam", scorer=GoodScorer(), n=3, select="score"
    )
    assert all(t.answer == "7" for t in traces)


def test_knockout_is_seeded():
    a = solve(problems(1), scripted(), get_format("stages"), "stage_beam", scorer=GoodJudge(), n=4, seed=3)
    b = solve(problems(1), scripted(), get_format("stages"), "stage_beam", scorer=GoodJudge(), n=4, seed=3)
    assert a[0].decisions == b[0].decisions


def picks() -> ScriptedEngine:
    """Atomic steps that name their sample index: ``Step d: ..., pick<i>.`` (two steps, then the
    final line). The answer is 7 only on the path that took sample 2 at both steps."""
    # distinct sentences per step, or the format rejects a near-copy of step 1
    words = ["Read the numbers off the question", "Add them up carefully"]
    return ScriptedEngine(
        AtomicWriter(
            lambda r, i, k: f"{words[k]}, pick{i}.", lambda r, i: "7" if r.prefix.count("pick2") == 2 else "5"
        ),
        name="pick",
        prompt_tokens=5,
    )


class TableScorer:
    """Step scores from a table by (step number, sample index); the best candidate is NEVER the
    first sampled. Under ``min`` every second-step child ties at the first step's 0.35."""

    name = "table"
    TABLE = {1: [0.30, 0.20, 0.35, 0.25], 2: [0.40, 0.60, 0.90, 0.50]}

    def score(self, queries):
        out = []
        for q in queries:
            scores = []
            for s in q.steps:
                m = re.match(r"Step (\d+): .*pick(\d)", s)
                scores.append(self.TABLE[int(m[1])][int(m[2])] if m else 0.5)
            out.append(ScoreResult(scores, calls=1))
        return out


@pytest.mark.parametrize("aggregate", ["last", "min", "mean", "prod", None])
@pytest.mark.parametrize("strategy, beam", [("greedy_step", None), ("step_beam", 2)])
def test_step_search_keeps_the_best_scored_candidate_not_the_first_sampled(strategy, beam, aggregate):
    opts = {k: v for k, v in {"beam": beam, "aggregate": aggregate}.items() if v is not None}
    traces = solve(
        problems(2),
        picks(),
        get_format("atomic"),
        strategy,
        scorer=TableScorer(),
        n=4,
        temperature=0.7,
        **opts,
    )
    for t in traces:
        assert t.config["aggregate"] == (aggregate or "last")  # the default of step search is `last`
        assert [n.text.strip()[-6:] for n in t.steps[:2]] == ["pick2.", "pick2."]
        assert [n.step_score for n in t.steps[:2]] == [0.35, 0.90]
        assert t.answer == "7"


def test_path_rank_breaks_min_ties_by_the_new_steps_own_score():
    from slowthink.search.base import SearchConfig, Tree, path_rank

    tree = Tree(problems(1)[0], "greedy_step", get_format("atomic"), SearchConfig())
    first = tree.add(0, "Step 1: a.\n", score=0.35, step_score=0.35)
    low = tree.add(first.id, "Step 2: b.\n", score=0.35, step_score=0.40)  # sampled first
    high = tree.add(first.id, "Step 2: c.\n", score=0.35, step_score=0.90)
    unknown = tree.add(first.id, "Step 2: d.\n", score=0.35, step_score=None)  # ranks as neutral 0.5
    ranked = sorted([low.id, unknown.id, high.id], key=lambda k: path_rank(tree, k), reverse=True)
    assert ranked == [high.id, unknown.id, low.id]
    assert path_rank(tree, high.id) == (0.35, 0.90, 0.35)
