"""Self-contained HTML reports: one run (tables, plots, example traces) and a side-by-side
comparison of several runs. Plots are embedded as base64 PNG; every model text is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slowthink.evaluate.metrics import token_total
from slowthink.evaluate.plots import plot_scaling, series
from slowthink.evaluate.records import METRICS, RecordKey, read_json
from slowthink.formats import get_format
from slowthink.inspect.capabilities import report_section
from slowthink.types import SlowthinkError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.ci{color:#777;font-size:.85em}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
.meta{color:#555;font-size:.9em}.plots img{max-width:49%;border:1px solid #eee}
.step{margin:.2em 0;padding:.3em .5em;border-left:3px solid #bbb;background:#fafafa;white-space:pre-wrap}
.kind{display:inline-block;min-width:7em;font-weight:bold;color:#555}
.k-summary{border-color:#00a0b0}.k-caption{border-color:#b000b0}.k-reasoning{border-color:#d0a000}
.k-conclusion,.k-answer,.k-final{border-color:#2e7d32}
details{margin:.6em 0;border:1px solid #e5e5e5;border-radius:4px;padding:.4em .8em}
summary{cursor:pointer;font-weight:600}pre{white-space:pre-wrap;margin:0}
td.text{text-align:left;max-width:600px;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.85em}
tr.chosen td{background:#eef8ee}
"""

ROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("problems", "problems"),
    ("ran", "ran"),
    ("errors", "errors"),
    ("no_answer", "no answer"),
    ("oracle", "any right"),
    ("total_tokens", "total tok"),
    ("policy_tokens", "policy tok"),
    ("policy_generated_tokens", "policy gen tok"),
    ("policy_prompt_tokens", "policy prompt tok"),
    ("scorer_generated_tokens", "scorer gen tok"),
    ("scorer_prompt_tokens", "scorer prompt tok"),
    ("engine_calls", "engine calls"),
    ("scorer_calls", "scorer calls"),
    ("wall_time_s", "wall s"),
)

TOKENS_NOTE = (
    "total tok = policy + scorer/judge tokens, prompt + generated, per problem: the default x axis of "
    "accuracy vs tokens (left panel); policy tok = the policy's prompt + generated tokens (right panel). "
    "Derived N* rows take the exact generated tokens of their k samples and k/N of the prompt and "
    "step-scorer tokens ((k-1)/(N-1) of a judge knockout's)."
)
ACCURACY_NOTE = (
    "accuracy over ran = over the problems that ran (no error); errors as wrong = over every problem with a "
    "record, an error counted as a wrong answer."
)

MAX_TEXT = 1500
"""Longest node text shown in a tree table (the rest is cut with a marker)."""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def n_label(row: Mapping[str, Any]) -> str:
    if row.get("n") is None:
        return "–"
    s = str(row["n"])
    return f"{s}*" if row.get("derived_from") else s


def acc_cell(row: Mapping[str, Any], key: str = "accuracy", ci: str = "ci95") -> str:
    if row.get(key) is None:
        return "–"
    lo, hi = row.get(ci, [0, 0])
    return f"{row[key]:.3f} <span class=ci>[{lo:.3f}, {hi:.3f}]</span>"


def fmt_num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def img_tag(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{esc(Path(path).stem)}" src="data:image/png;base64,{data}">'


def rows_table(rows: Sequence[Mapping[str, Any]], run_col: bool = False) -> str:
    head = (["<th class=l>run</th>"] if run_col else []) + [
        "<th class=l>strategy</th><th>N</th><th>accuracy over ran [95% CI]</th><th>errors as wrong [95% CI]</th>"
    ]
    head += [f"<th>{esc(t)}</th>" for _, t in ROW_COLUMNS]
    body = []
    for r in rows:
        cells = [f"<td class=l>{esc(r.get('run'))}</td>"] if run_col else []
        cells += [
            f"<td class=l>{esc(r['strategy'])}</td><td>{esc(n_label(r))}</td>"
            f"<td>{acc_cell(r, 'accuracy_ran', 'ci95_ran')}</td><td>{acc_cell(r)}</td>"
        ]
        cells += [f"<td>{esc(fmt_num(r.get(k)))}</td>" for k, _ in ROW_COLUMNS]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return "<table><tr>" + "".join(head) + "</tr>" + "".join(body) + "</table>"


def group_tables(rows: Sequence[Mapping[str, Any]]) -> str:
    """Accuracy per meta group: one table per meta key, a column per (strategy, N)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.get("by", {}) if k not in keys]
    parts = []
    for key in keys:
        groups = sorted({g for r in rows for g in r.get("by", {}).get(key, {})})
        if not groups:
            continue
        head = (
            "<tr><th class=l>"
            + esc(key)
            + "</th>"
            + "".join(f"<th>{esc(r['strategy'])}<br>N={esc(n_label(r))}</th>" for r in rows)
            + "</tr>"
        )
        body = []
        for g in groups:
            cells = []
            for r in rows:
                c = r.get("by", {}).get(key, {}).get(g)
                cells.append(
                    f"<td>{acc_cell(c)}<br><span class=ci>n={c['problems']}</span></td>"
                    if c
                    else "<td>–</td>"
                )
            body.append(f"<tr><td class=l>{esc(g)}</td>{''.join(cells)}</tr>")
        parts.append(f"<h3>by {esc(key)}</h3><table>{head}{''.join(body)}</table>")
    return "".join(parts)


def _step_label(kind: str, i: int, fmt_name: str) -> str:
    if fmt_name == "stages":
        return kind.upper()
    return f"step {i}" if kind == "step" else f"{i} · {kind}"


def _steps_html(node: Mapping[str, Any], fmt_name: str) -> str:
    """A path node as steps: a whole response is cut by its format's parser."""
    text = node.get("text") or ""
    score = f" <span class=ci>score {node['score']:.3f}</span>" if node.get("score") is not None else ""
    if node.get("kind") == "response":
        try:
            parsed = get_format(fmt_name).parse(text)
            steps = [(s.kind, s.text) for s in parsed.steps]
        except Exception:
            steps = []
        if steps:
            return "".join(
                f"<div class='step k-{esc(k)}'><span class=kind>{esc(_step_label(k, i, fmt_name))}</span>"
                f"{esc(t)}</div>"
                for i, (k, t) in enumerate(steps, 1)
            ) + (f"<div class=meta>{score}</div>" if score else "")
    kind = node.get("kind") or "step"
    return (
        f"<div class='step k-{esc(kind)}'><span class=kind>{esc(kind.upper())}</span>{esc(text)}{score}</div>"
    )


def trace_html(rec: Mapping[str, Any]) -> str:
    """One record as a collapsible block: question, chosen path, votes, judge decisions, the tree."""
    problem = rec.get("problem") or {}
    trace = rec.get("trace") or {}
    grade = rec.get("grade") or {}
    mark = "<span class=ok>✓</span>" if grade.get("correct") else "<span class=bad>✗</span>"
    title = (
        f"{esc(rec['strategy'])} {esc(rec['key'])} · {esc(rec['id'])} · {mark} answer "
        f"<code>{esc(rec.get('answer'))}</code> · gold <code>{esc(problem.get('answer'))}</code>"
    )
    parts = [f"<details><summary>{title}</summary>"]
    parts.append(f"<p><b>question</b> {esc(problem.get('question'))}</p>")
    if problem.get("choices"):
        parts.append("<p class=meta>choices: " + " | ".join(esc(c) for c in problem["choices"]) + "</p>")
    if rec.get("error"):
        parts.append(f"<p class=bad>error: {esc(rec['error'])}</p>")
    nodes = {n["id"]: n for n in trace.get("nodes", [])}
    path = [i for i in trace.get("path", []) if nodes.get(i, {}).get("parent") is not None]
    if path:
        parts.append("<h4>chosen path</h4>")
        parts += [_steps_html(nodes[i], trace.get("format", "")) for i in path]
    if trace.get("votes"):
        parts.append(
            "<h4>votes</h4><table><tr><th class=l>answer</th><th>votes</th></tr>"
            + "".join(
                f"<tr><td class=l>{esc(k)}</td><td>{v:g}</td></tr>"
                for k, v in list(trace["votes"].items())[:20]
            )
            + "</table>"
        )
    if trace.get("decisions"):
        parts.append(
            "<h4>judge decisions</h4><table><tr><th class=l>stage</th><th>round</th><th>a</th><th>b</th>"
            "<th>winner</th><th>parsed</th></tr>"
            + "".join(
                f"<tr><td class=l>{esc(d.get('stage'))}</td><td>{esc(d.get('round'))}</td><td>{esc(d.get('a'))}</td>"
                f"<td>{esc(d.get('b'))}</td><td>{esc(d.get('winner'))}</td><td>{esc(d.get('parsed'))}</td></tr>"
                for d in trace["decisions"][:60]
            )
            + "</table>"
        )
    if trace.get("notes"):
        parts.append("<p class=meta>notes: " + "; ".join(esc(n) for n in trace["notes"]) + "</p>")
    tree = [n for n in trace.get("nodes", []) if n.get("parent") is not None]
    if tree:
        rows = []
        for n in tree[:200]:
            text = n.get("text") or ""
            if len(text) > MAX_TEXT:
                text = text[:MAX_TEXT] + f" … [{len(text) - MAX_TEXT} more chars]"
            cls = " class=chosen" if n.get("chosen") else ""
            rows.append(
                f"<tr{cls}><td>{n['id']}</td><td>{esc(n.get('parent'))}</td><td>{esc(n.get('depth'))}</td>"
                f"<td class=l>{esc(n.get('kind'))}</td><td class=l>{esc(n.get('answer'))}</td>"
                f"<td>{fmt_num(n.get('score'))}</td><td>{esc(n.get('generated_tokens'))}</td>"
                f"<td class=l>{esc(n.get('note'))}</td><td class=text>{esc(text)}</td></tr>"
            )
        parts.append(
            f"<details><summary>search tree ({len(tree)} nodes; chosen path highlighted)</summary>"
            "<table><tr><th>id</th><th>parent</th><th>depth</th><th class=l>kind</th><th class=l>answer</th>"
            "<th>score</th><th>gen tok</th><th class=l>note</th><th class=l>text</th></tr>"
            + "".join(rows)
            + "</table></details>"
        )
    c = rec.get("compute") or {}
    if c:
        parts.append(
            "<p class=meta>compute: " + ", ".join(f"{esc(k)} {fmt_num(v)}" for k, v in c.items()) + "</p>"
        )
    parts.append("</details>")
    return "".join(parts)


def pick_examples(
    records: Mapping[RecordKey, Mapping[str, Any]], problem_ids: Sequence[str], per_key: int = 2
) -> list[Mapping[str, Any]]:
    """Per (strategy, key): the first right and the first wrong record (in problem order)."""
    by_job: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    order = {pid: i for i, pid in enumerate(problem_ids)}
    for rec in records.values():
        if str(rec["id"]) in order:
            by_job.setdefault((rec["strategy"], rec["key"]), []).append(rec)
    out = []
    for recs in by_job.values():
        recs.sort(key=lambda r: order[str(r["id"])])
        right = [r for r in recs if (r.get("grade") or {}).get("correct")]
        wrong = [r for r in recs if not (r.get("grade") or {}).get("correct")]
        picked = (right[:1] + wrong[:1] + right[1:] + wrong[1:])[:per_key]
        out += picked
    return out


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )


def write_run_report(
    metrics: Mapping[str, Any],
    records: Mapping[RecordKey, Mapping[str, Any]],
    problem_ids: Sequence[str],
    path: Path,
    pngs: Sequence[Path] = (),
    examples_per_job: int = 2,
    view: str | None = None,
) -> Path:
    """The report of one run: summary table, per-group tables, plots, example traces, and the
    capability table when ``slowthink analyze capabilities`` left a profile in the run folder
    (:mod:`slowthink.inspect.capabilities`); ``view``: the search-tree viewer page next to it, linked."""
    rows = metrics["rows"]
    cfg = metrics.get("config", {})
    body = [
        f"<h1>slowthink eval · {esc(metrics.get('run'))}</h1>",
        f"<p class=meta>{esc(metrics['load']['summary'])}<br>engine <code>{esc(metrics.get('engine'))}</code> · "
        f"format <code>{esc(metrics.get('format'))}</code> · scorer <code>{esc(metrics.get('scorer'))}</code> · "
        f"seeds {esc(cfg.get('seeds'))} · created {esc(metrics.get('created'))}</p>",
    ]
    if metrics["load"].get("skipped"):
        body.append(
            "<p class=meta>skipped at load: "
            + ", ".join(f"{esc(k)}: {v}" for k, v in metrics["load"]["skipped"].items())
            + "</p>"
        )
    if view:
        body.append(f'<p><a href="{esc(view)}">search trees of every problem ({esc(view)})</a></p>')
    body.append("<h2>accuracy and compute</h2>" + rows_table(rows))
    body.append(
        "<p class=meta>N* = derived by subsampling the samples of the largest N (mean over seeds); "
        "token and call columns are means per problem; wall s is the total.</p>"
        f"<p class=meta>{esc(ACCURACY_NOTE)}</p><p class=meta>{esc(TOKENS_NOTE)}</p>"
    )
    for note in metrics.get("notes", []):
        body.append(f"<p class=meta>{esc(note)}</p>")
    g = metrics.get("grading") or {}
    if g.get("judge"):
        body.append(
            f"<p class=meta>LLM grading judge <code>{esc(g['judge'])}</code>: {esc(g.get('judged', 0))} answers "
            f"the rules called wrong were judged; same: {esc(g.get('judge_said_same', 0))}, different: "
            f"{esc(g.get('judge_said_different', 0))}, unusable reply: {esc(g.get('judge_unusable', 0))} "
            "(verdicts in grade_judge.jsonl).</p>"
        )
    if pngs:
        body.append("<h2>scaling</h2><div class=plots>" + "".join(img_tag(p) for p in pngs) + "</div>")
    groups = group_tables(rows)
    if groups:
        body.append("<h2>by group</h2>" + groups)
    ex = pick_examples(records, problem_ids, examples_per_job)
    if ex:
        body.append("<h2>example traces</h2>" + "".join(trace_html(r) for r in ex))
    path = Path(path)
    body.append(report_section(path.parent))  # the capability profile, when analyze wrote one
    path.write_text(page(f"slowthink eval {metrics.get('run')}", "".join(body)), encoding="utf-8")
    return path


def load_run_metrics(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SlowthinkError(f"run folder not found: {run_dir} (pass folders made by slowthink eval --out)")
    return read_json(run_dir / METRICS, "metrics of run")


def compare_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """All rows of all runs, each tagged with its run name."""
    return [{**r, "run": name} for name, m in runs.items() for r in m["rows"]]


def pivot(
    runs: Mapping[str, Mapping[str, Any]],
) -> tuple[list[tuple[str, Any, Any]], dict[tuple, dict[str, Any]]]:
    """(strategy, N, derived) keys in first-seen order and ``{key: {run: row}}`` for a side-by-side table."""
    keys: list[tuple[str, Any, Any]] = []
    cells: dict[tuple, dict[str, Any]] = {}
    for name, m in runs.items():
        for r in m["rows"]:
            k = (r["strategy"], r["n"], r.get("derived_from"))
            if k not in cells:
                keys.append(k)
                cells[k] = {}
            cells[k][name] = r
    keys.sort(key=lambda k: (k[0], k[1] or 0))
    return keys, cells


def run_names(run_dirs: Sequence[Path]) -> list[str]:
    """Short unique names: the folder name, with its parent when two folders share a name."""
    names = [Path(d).name or str(d) for d in run_dirs]
    if len(set(names)) < len(names):
        names = [str(Path(d)) for d in run_dirs]
    return names


def write_compare_report(run_dirs: Sequence[Path], path: Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    """A side-by-side report of several runs (tables + combined plots) into one HTML file."""
    runs = {name: load_run_metrics(d) for name, d in zip(run_names(run_dirs), run_dirs)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys, cells = pivot(runs)
    head = (
        "<tr><th class=l>strategy</th><th>N</th>"
        + "".join(f"<th>{esc(n)}<br>accuracy [95% CI]</th><th>{esc(n)}<br>total tok</th>" for n in runs)
        + "</tr>"
    )
    body_rows = []
    for k in keys:
        label_row = {"n": k[1], "derived_from": k[2]}
        cells_html = []
        for n in runs:
            r = cells[k].get(n)
            cells_html.append(
                f"<td>{acc_cell(r)}</td><td>{fmt_num(token_total(r))}</td>" if r else "<td>–</td><td>–</td>"
            )
        body_rows.append(
            f"<tr><td class=l>{esc(k[0])}</td><td>{esc(n_label(label_row))}</td>{''.join(cells_html)}</tr>"
        )
    data: dict[str, list] = {}
    for name, m in runs.items():
        data.update(series(m["rows"], prefix=f"{name}/"))
    pngs = plot_scaling(data, path.parent, title="comparison", stem=f"{path.stem}_")
    runs_list = "".join(
        f"<li><b>{esc(n)}</b>: {esc(m['load']['summary'])}; engine <code>{esc(m.get('engine'))}</code>, "
        f"format <code>{esc(m.get('format'))}</code>, scorer <code>{esc(m.get('scorer'))}</code></li>"
        for n, m in runs.items()
    )
    body = (
        f"<h1>slowthink report · {len(runs)} run{'s' if len(runs) != 1 else ''}</h1><ul>{runs_list}</ul>"
        f"<h2>side by side</h2><table>{head}{''.join(body_rows)}</table>"
        "<p class=meta>N* = derived by subsampling the largest N; accuracy counts an error as wrong.</p>"
        f"<p class=meta>{esc(TOKENS_NOTE)}</p>"
        "<h2>scaling</h2><div class=plots>" + "".join(img_tag(p) for p in pngs) + "</div>"
        "<h2>all rows</h2>" + rows_table(compare_rows(runs), run_col=True)
    )
    path.write_text(page("slowthink report", body), encoding="utf-8")
    return path, runs
