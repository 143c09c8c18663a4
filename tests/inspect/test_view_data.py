"""The viewer's data, extracted from real traces of the strategies on the scripted engine doubles;
the page's escaping of untrusted model text; ``slowthink view`` on a run folder and a trace file."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from slowthink.cli import app
from slowthink.inspect import load_views, problem_view, render_page
from slowthink.inspect.page import embed_json
from slowthink.inspect.tree import rejection
from slowthink.types import Node, SlowthinkError
from tests.inspect.traces import HOSTILE, stage_beam_traces, step_beam_traces, write_run


def by_id(view):
    return {n["id"]: n for n in view["nodes"]}


def test_step_beam_chosen_path_scores_rejections_and_compute():
    ps, traces = step_beam_traces()
    t = traces[0]
    v = problem_view(t, ps[0].to_dict(), {"correct": True}, "n=3")
    nodes = by_id(v)
    assert [i for i, n in nodes.items() if n["chosen"]] == t.path and len(t.path) >= 3
    assert v["path"] == t.path and v["correct"] is True and v["gold"] == "3" and v["answer"] == t.answer
    # every step node carries the scorer's step score; path scores too
    steps = [n for n in v["nodes"] if n["kind"] == "step" and n["rejected"] is None]
    assert steps and all(n["step_score"] is not None and n["score"] is not None for n in steps)
    # a step copying its parent is rejected by the atomic format, with its reason
    rejected = [n for n in v["nodes"] if n["rejected"]]
    assert rejected and {n["rejected"] for n in rejected} == {"near-copy of the previous step"}
    assert {n["note"] for n in v["nodes"] if n["score"] == 0.9} == {None, "duplicate of a sibling"}
    assert not any(n["chosen"] for n in rejected)
    # per node tokens add up over the subtree; the trace's compute is carried as is
    assert nodes[0]["subtree_tokens"] == sum(n.generated_tokens for n in t.nodes)
    assert v["compute"]["generated_tokens"] == t.compute.generated_tokens and v["compute"]["scorer_calls"] > 0


def test_stage_beam_judge_decisions_are_attached_to_both_candidates():
    ps, traces = stage_beam_traces()
    t = traces[0]
    v = problem_view(t, ps[0].to_dict())
    nodes = by_id(v)
    assert v["decisions"] == t.decisions and len(t.decisions) >= 4
    for d in t.decisions:
        loser = d["b"] if d["winner"] == d["a"] else d["a"]
        assert {
            "i": t.decisions.index(d),
            "vs": loser,
            "won": True,
            "stage": d["stage"],
            "round": d["round"],
            "parsed": True,
            "by": "judge",
        } in nodes[d["winner"]]["decisions"]
        assert any(x["vs"] == d["winner"] and not x["won"] for x in nodes[loser]["decisions"])
    # the chosen path runs through a winner of every stage
    chosen = [nodes[i] for i in t.path[1:]]
    assert [n["kind"] for n in chosen] == ["summary", "caption", "reasoning", "conclusion"]
    assert v["correct"] is None  # no grade given


def test_reasoning_checks_show_on_each_candidate():
    _, traces = stage_beam_traces(precheck=True)
    t = traces[0]
    v = problem_view(t)
    nodes = by_id(v)
    checked = [d for d in t.decisions if "check" in d]
    assert checked and all(d["stage"] == "reasoning" for d in checked)
    for d in checked:
        a, b = (nodes[d["a"]], nodes[d["b"]])
        mine = [x for x in a["decisions"] if x["i"] == t.decisions.index(d)][0]
        theirs = [x for x in b["decisions"] if x["i"] == t.decisions.index(d)][0]
        assert (mine["checked"], theirs["checked"]) == tuple(d["check"]) and mine["by"] == d["by"]
        assert mine["checked"] == ("= 8" not in a["text"])
    # the check fails every '= 8' reasoning it met: the chosen reasoning says 4 + 3 = 7
    assert "= 7" in next(n["text"] for n in v["nodes"] if n["chosen"] and n["kind"] == "reasoning")


def test_rejection_splits_reason_from_other_notes():
    assert rejection(Node(1, 0, note="rejected: empty step")) == ("empty step", None)
    assert rejection(Node(1, 0, note="cut at max_tokens; rejected: too long")) == (
        "too long",
        "cut at max_tokens",
    )
    assert rejection(Node(1, 0, note="duplicate of a sibling")) == (None, "duplicate of a sibling")
    assert rejection(Node(1, 0)) == (None, None)


def test_embedded_json_cannot_end_the_script_block():
    text = embed_json({"t": HOSTILE})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": HOSTILE}


def test_page_holds_model_text_only_inside_the_json_block():
    ps, traces = step_beam_traces()
    assert any(HOSTILE in n.text for n in traces[0].nodes)
    page = render_page([problem_view(t, p.to_dict()) for p, t in zip(ps, traces)], title="<t> & </script>")
    assert page.count("</script>") == 2 and "<script>window.PWNED" not in page
    assert "<title>&lt;t&gt; &amp; &lt;/script&gt;</title>" in page
    block = re.search(r'<script type="application/json" id="st-data">(.*?)</script>', page, re.S)[1]
    assert HOSTILE in json.dumps(json.loads(block), ensure_ascii=False)
    assert "innerHTML" not in page  # the script writes text with textContent only


def test_load_a_run_folder_lists_a_failed_problem_skips_a_cut_line_and_filters(tmp_path):
    ps, traces = step_beam_traces()
    run = write_run(tmp_path / "run", ps, traces, [True, False, True])
    views = load_views(run)
    assert [(v["id"], v["correct"], v["key"]) for v in views] == [
        ("a0", True, "n=4"),
        ("a1", False, "n=4"),
        ("a2", True, "n=4"),
        ("boom", False, "n=4"),
    ]
    assert (views[3]["error"], views[3]["nodes"]) == ("RuntimeError: boom", [])  # failed: listed, no tree
    assert [v["id"] for v in load_views(run, "a1")] == ["a1"]
    with pytest.raises(SlowthinkError, match="problem 'zz' is not in"):
        load_views(run, "zz")
    with pytest.raises(SlowthinkError, match="no records.jsonl"):
        load_views(tmp_path)


def test_view_command_on_a_run_folder_and_on_a_trace_file(tmp_path):
    ps, traces = stage_beam_traces()
    run = write_run(tmp_path / "run", ps, traces, [True, False])
    r = CliRunner().invoke(app, ["view", str(run), "-o", str(tmp_path / "v.html")])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and (tmp_path / "v.html").read_text().startswith("<!doctype html>")
    one = tmp_path / "trace.json"
    one.write_text(traces[0].to_json())  # what slowthink solve --json prints
    r = CliRunner().invoke(app, ["view", str(one), "--problem", "q0", "-o", str(tmp_path / "one.html")])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    r = CliRunner().invoke(app, ["view", str(bad), "-o", str(tmp_path / "b.html")])
    assert r.exit_code == 2 and "not a slowthink trace" in r.output


def test_an_eval_run_writes_view_html_linked_from_its_report(tmp_path):
    from tests.evaluate.eval_doubles import sums_run

    out = tmp_path / "run"
    r = sums_run(tmp_path, out, strategies=["step_beam"], ns=[2])
    assert out / "view.html" in r.files
    assert '<a href="view.html">' in (out / "report.html").read_text()
    views = load_views(out)
    assert sorted(v["id"] for v in views) == sorted(
        json.loads(x)["id"] for x in (out / "records.jsonl").open()
    )
    assert all(v["correct"] is not None and any(n["chosen"] for n in v["nodes"]) for v in views)
    page = (out / "view.html").read_text()
    assert page == render_page(views, title="slowthink view · run")
