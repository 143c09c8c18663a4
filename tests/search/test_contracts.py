"""What the strategy registry declares and checks before any generation: the scorer roles a strategy
needs under its config (``require``), path-wise / N-free, the ``Literal`` options checked when a
config is built, and the path-wise selection rules the evaluation's subsampling re-runs."""

from __future__ import annotations

import pytest

from slowthink.cli import main
from slowthink.evaluate.config import Job
from slowthink.evaluate.runner import check_scorer
from slowthink.evaluate.subsample import derive
from slowthink.formats import get_format
from slowthink.scorers import SymbolicScorer
from slowthink.scorers.aggregate import AGGREGATIONS
from slowthink.scorers.base import PAIRWISE, REASONING_CHECKS, STEP_SCORES
from slowthink.search import STRATEGIES, make_config, require, solve
from slowthink.search.base import choices, samples
from slowthink.types import Problem, Trace
from tests.evaluate.eval_doubles import Judge, ScriptedEngine, StepScorer


def problems(k: int) -> list[Problem]:
    return [Problem(id=f"q{i}", question=f"What is {i} + 3?", answer=str(i + 3)) for i in range(k)]


class NoCalls:
    """An engine that fails the test if anything asks it to generate."""

    name, supports_images = "no-calls", False

    def generate(self, requests):
        pytest.fail(f"the engine was called ({len(requests)} request(s)) before the scorer was checked")


class Both(StepScorer, Judge):
    """Step scores and pairwise comparisons (no reasoning check)."""

    name = "both"


class CompareOnly:
    """A pairwise judge that cannot score steps nor check reasoning."""

    name = "compare-only"

    def compare(self, comparisons):  # pragma: no cover - never reached
        raise AssertionError


# -- what a strategy needs, and the one check of it ---------------------------------------------


@pytest.mark.parametrize(
    "strategy, options, roles",
    [
        ("direct", {}, []),
        ("quick", {}, []),
        ("majority", {}, []),
        ("best_of_n", {}, [STEP_SCORES]),
        ("best_of_n", {"select": "weighted"}, [STEP_SCORES]),
        ("best_of_n", {"select": "judge"}, [PAIRWISE]),
        ("step_beam", {}, [STEP_SCORES]),
        ("greedy_step", {}, [STEP_SCORES]),
        ("stage_beam", {}, [PAIRWISE]),
        ("stage_beam", {"select": "score"}, [STEP_SCORES]),
        ("stage_beam", {"precheck": True}, [PAIRWISE, REASONING_CHECKS]),
        ("sentence_beam", {"precheck": True}, [PAIRWISE, REASONING_CHECKS]),
    ],
)
def test_the_registry_declares_the_roles_a_config_needs(strategy, options, roles):
    entry = STRATEGIES[strategy]
    assert [n.role for n in entry.needs(make_config(strategy, **options))] == roles
    assert entry.needs_scorer == (strategy not in {"direct", "quick", "majority"})


def test_path_wise_and_n_free_are_declared_once():
    assert {k for k, e in STRATEGIES.items() if e.pathwise} == {"majority", "best_of_n"}
    assert {k for k, e in STRATEGIES.items() if e.n_free} == {"direct", "cot", "quick"}


@pytest.mark.parametrize(
    "strategy, options, scorer, message",
    [
        (
            "step_beam",
            {},
            None,
            "strategy 'step_beam' needs a scorer with step scores; no scorer was given: "
            "pass --scorer judge|symbolic|prm:PATH",
        ),
        (
            "greedy_step",
            {},
            CompareOnly(),
            "strategy 'greedy_step' needs a scorer with step scores; scorer 'compare-only' has no score(): "
            "pass --scorer judge|symbolic|prm:PATH",
        ),
        (
            "best_of_n",
            {"select": "judge"},
            StepScorer(),
            "strategy 'best_of_n' with select=judge needs a scorer with pairwise comparisons; "
            "scorer 'scripted-scorer' has no compare(): pass --scorer judge",
        ),
        (
            "best_of_n",
            {"select": "weighted"},
            Judge(),
            "strategy 'best_of_n' with select=weighted needs a scorer with step scores; "
            "scorer 'scripted-judge' has no score(): pass --scorer judge|symbolic|prm:PATH",
        ),
        (
            "stage_beam",
            {},
            SymbolicScorer(),
            "strategy 'stage_beam' with select=judge needs a scorer with pairwise comparisons; "
            "scorer 'symbolic' has no compare(): pass --scorer judge",
        ),
        (
            "stage_beam",
            {"precheck": True},
            CompareOnly(),
            "strategy 'stage_beam' with precheck needs a scorer with reasoning checks; "
            "scorer 'compare-only' has no check_reasoning(): pass --scorer judge",
        ),
        (
            "sentence_beam",
            {"select": "score"},
            None,
            "strategy 'sentence_beam' with select=score needs a scorer with step scores; no scorer was given: "
            "pass --scorer judge|symbolic|prm:PATH",
        ),
    ],
)
def test_a_missing_role_is_one_line_before_any_engine_call(strategy, options, scorer, message):
    fmt = get_format("stages" if "stage" in strategy else "atomic")
    with pytest.raises(Exception) as err:
        solve(problems(2), NoCalls(), fmt, strategy, scorer=scorer, **options)
    assert type(err.value).__name__ == "SlowthinkError" and str(err.value) == message
    # The eval preflight asks the same question and gets the same answer.
    with pytest.raises(Exception) as again:
        check_scorer([Job(strategy, 2, (2,), overrides=tuple(sorted(options.items())))], scorer)
    assert str(again.value) == message


def test_a_scorer_with_every_role_passes():
    judge = Both()
    for strategy, options in [
        ("best_of_n", {"select": "judge"}),
        ("best_of_n", {}),
        ("stage_beam", {}),
        ("step_beam", {}),
        ("direct", {}),
    ]:
        require(strategy, make_config(strategy, **options), judge)
    require("direct", make_config("direct"), None)  # nothing needed, nothing given


# -- options with a fixed set of values are checked when the config is built ---------------------


@pytest.mark.parametrize(
    "strategy, option, value, allowed",
    [
        ("best_of_n", "select", "vote", "('score', 'weighted', 'judge')"),
        ("best_of_n", "aggregate", "max", "('min', 'last', 'mean', 'prod')"),
        ("step_beam", "aggregate", "median", "('min', 'last', 'mean', 'prod')"),
        ("greedy_step", "aggregate", "MIN", "('min', 'last', 'mean', 'prod')"),
        ("stage_beam", "select", "weighted", "('judge', 'score')"),
        ("stage_beam", "aggregate", "max", "('min', 'last', 'mean', 'prod')"),
        ("sentence_beam", "pairing", "league", "('bracket', 'pool')"),
    ],
)
def test_literal_options_are_checked_at_make_config(strategy, option, value, allowed):
    with pytest.raises(ValueError) as err:
        make_config(strategy, **{option: value})
    assert str(err.value) == f"{option} must be one of {allowed}, got {value!r}"
    # ... so a search never starts with one: no engine call
    with pytest.raises(ValueError, match=f"{option} must be one of"):
        solve(problems(1), NoCalls(), get_format("atomic"), strategy, scorer=Both(), **{option: value})


def test_every_aggregate_option_offers_exactly_the_aggregations():
    for name, entry in STRATEGIES.items():
        fields = choices(entry.config)
        if "aggregate" in fields:
            assert set(fields["aggregate"]) == set(AGGREGATIONS), name
    assert [k for k, e in STRATEGIES.items() if "aggregate" in choices(e.config)] == [
        "best_of_n",
        "step_beam",
        "greedy_step",
        "stage_beam",
        "sentence_beam",
    ]


def test_a_bad_aggregate_on_the_command_line_stops_before_the_model_loads(capsys):
    with pytest.raises(SystemExit) as e:
        main(
            [
                "solve",
                "--strategy",
                "step_beam",
                "--aggregate",
                "max",
                "--engine",
                "llamacpp",
                "--model",
                "/nope/missing.gguf",
                "What is 1 + 1?",
            ]
        )
    err = " ".join(capsys.readouterr().err.split())
    assert e.value.code == 2
    assert (
        "bad option for strategy 'step_beam': aggregate must be one of ('min', 'last', 'mean', 'prod')" in err
    )
    assert "missing.gguf" not in err


# -- path-wise selection: the run and the subsampling share the strategy's rule -------------------


def subset_trace(trace: Trace, ids: list[int]) -> Trace:
    """A copy of a path-wise trace that holds only the samples ``ids`` (in sampling order)."""
    out = Trace.from_dict(trace.to_dict())
    out.nodes = [n for n in out.nodes if n.id in {0, *ids}]
    return out


@pytest.mark.parametrize(
    "strategy, options",
    [
        ("majority", {}),
        ("best_of_n", {"select": "score"}),
        ("best_of_n", {"select": "weighted"}),
        ("best_of_n", {"select": "weighted", "aggregate": "mean"}),
    ],
)
def test_a_derived_subset_answers_as_the_strategy_run_on_those_samples(strategy, options):
    """derive() at k picks, for each k-subset, what the strategy's own run picks when given exactly
    those k samples (taken as reused samples: no engine call)."""
    probs = problems(4)
    full = solve(
        probs,
        ScriptedEngine(p_right=0.5),
        get_format("atomic"),
        strategy,
        scorer=StepScorer(),
        n=6,
        seed=5,
        **options,
    )
    checked = 0
    for trace, p in zip(full, probs):
        by_id = {n.id: n for n in trace.nodes}
        for d in derive(trace, p, 3, seeds=4):
            prior = subset_trace(trace, d.nodes)
            assert [n.id for n in samples(prior)] == d.nodes
            (again,) = solve(
                [p],
                NoCalls(),
                get_format("atomic"),
                strategy,
                scorer=StepScorer(),
                n=3,
                seed=5,
                reuse={p.id: prior},
                **options,
            )
            assert again.answer == d.answer
            assert again.nodes[again.path[-1]].text == by_id[d.winner].text
            checked += 1
    assert checked == 16
