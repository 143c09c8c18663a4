"""The capability table inside an eval run's ``report.html``: written by ``slowthink analyze
capabilities`` (spliced into the report at once), kept when the evaluation re-renders the report,
and a report of a run without a profile is what it was."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from slowthink.cli import app
from slowthink.evaluate.records import read_records
from slowthink.evaluate.report import write_run_report
from slowthink.inspect.capabilities import BEGIN, CAPABILITIES, CAPABILITIES_BAR, END, splice
from tests.analyze.runs import MODEL_A, write_run
from tests.evaluate.eval_doubles import sums_run


def eval_run(tmp_path):
    out = tmp_path / "model-a"
    sums_run(tmp_path, out, k=4, strategies=["quick"])
    return out


def rerender(run):
    metrics = json.loads((run / "metrics.json").read_text())
    records, _ = read_records(run / "records.jsonl")
    ids = list(dict.fromkeys(str(rec["id"]) for rec in records.values()))  # problem order
    pngs = [p for p in (run / "accuracy_vs_n.png", run / "accuracy_vs_tokens.png") if p.is_file()]
    return write_run_report(metrics, records, ids, run / "report.html", pngs, view="view.html").read_text()


def test_analyze_puts_the_capability_table_into_the_runs_report(tmp_path):
    run = eval_run(tmp_path)
    before = (run / "report.html").read_text()
    assert BEGIN not in before and "capabilit" not in before.lower()
    plain = rerender(run)  # a run without a profile: the report is what it was
    assert plain == before

    out = tmp_path / "cap"
    r = CliRunner().invoke(app, ["analyze", "capabilities", str(run), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"capability table added to {run / 'report.html'}" in r.output
    html = (run / "report.html").read_text()
    section = html[html.index(BEGIN) : html.index(END) + len(END)]
    profile = json.loads((out / "capabilities.json").read_text())["runs"]["model-a"]
    name, row = max(profile["capabilities"].items(), key=lambda kv: kv[1]["steps"])
    assert row["steps"] > 0 and "<h2>capabilities</h2>" in section
    assert f"<tr><td class=l>{name}</td><td>{row['steps']}</td><td>{row['score']:.2f} [" in section
    assert f"weakest capability: <b>{profile['weakest']}</b>" in section
    assert section.count("data:image/png;base64,") == 1 and (run / CAPABILITIES_BAR).is_file()
    assert html.replace(section, "") == before  # nothing else of the report changed
    assert json.loads((run / CAPABILITIES).read_text())["runs"] == {"model-a": profile}

    # a second analysis replaces the section; the evaluation's own re-rendering keeps it
    r = CliRunner().invoke(app, ["analyze", "capabilities", str(run), "-o", str(out), "--no-plots"])
    assert r.exit_code == 0, r.output
    html = (run / "report.html").read_text()
    assert html.count(BEGIN) == 1 and "data:image/png;base64," not in html.split(BEGIN)[1]
    assert rerender(run) == html

    (run / CAPABILITIES).unlink()
    assert rerender(run) == before


def test_no_into_runs_leaves_the_run_folder_alone(tmp_path):
    run = eval_run(tmp_path)
    before = (run / "report.html").read_text()
    r = CliRunner().invoke(
        app,
        ["analyze", "capabilities", str(run), "-o", str(tmp_path / "cap"), "--no-plots", "--no-into-runs"],
    )
    assert r.exit_code == 0, r.output
    assert (run / "report.html").read_text() == before and not (run / CAPABILITIES).exists()


def test_splice_replaces_adds_and_removes_the_section():
    page = "<html><body><h1>r</h1></body></html>"
    one = splice(page, f"{BEGIN}A{END}")
    assert one == f"<html><body><h1>r</h1>{BEGIN}A{END}</body></html>"
    assert splice(one, f"{BEGIN}B{END}") == f"<html><body><h1>r</h1>{BEGIN}B{END}</body></html>"
    assert splice(one, "") == page


def test_an_unwritable_run_folder_is_one_line(tmp_path):
    run = write_run(tmp_path / "model-a", MODEL_A)
    (run / CAPABILITIES).mkdir()
    r = CliRunner().invoke(
        app, ["analyze", "capabilities", str(run), "-o", str(tmp_path / "cap"), "--no-plots"]
    )
    last = r.output.strip().splitlines()[-1]  # after the progress line: one error line
    assert r.exit_code == 2 and last.startswith("error: cannot write") and "pass --no-into-runs" in last
