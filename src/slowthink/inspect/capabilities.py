"""A run's capability profile inside its ``report.html``: the neutral contract between ``analyze``
(which writes it) and ``evaluate`` (whose report shows it); neither imports the other.

The contract is two files in the run folder: ``capabilities.json`` (the schema of the analysis's
own ``capabilities.json``: ``classifier``, ``scorer``, ``capabilities`` [{name, description}],
``runs`` {label: {all, capabilities {name: {steps, share, scored, score, ci95}}, weakest}}) and,
optionally, ``capabilities_bar.png``. :func:`report_section` renders them as one HTML section
between two marker comments; ``evaluate``'s report appends it at the end of the body when the JSON
is there (and nothing otherwise), and ``slowthink analyze capabilities`` splices it into an existing
``report.html`` at once (:func:`update_report`: replacing the section of an earlier analysis).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

CAPABILITIES = "capabilities.json"
CAPABILITIES_BAR = "capabilities_bar.png"
BEGIN = "<!-- slowthink:capabilities -->"
END = "<!-- /slowthink:capabilities -->"


def score_cell(row: dict[str, Any]) -> str:
    if row["score"] is None:
        return "–"
    lo, hi = row["ci95"]
    return f"{row['score']:.2f} [{lo:.2f}, {hi:.2f}]"


def table_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per capability (and ``all``), two columns (steps, score) per run."""
    runs = list(data["runs"])
    head = ["capability"] + [h for r in runs for h in (f"{r} steps", f"{r} score [95% CI]")]
    rows = []
    for name in [c["name"] for c in data["capabilities"]] + ["all"]:
        cells = [name]
        for r in runs:
            row = data["runs"][r]["all"] if name == "all" else data["runs"][r]["capabilities"][name]
            cells += [str(row["steps"]), score_cell(row)]
        rows.append(cells)
    return head, rows


def html_table(data: dict[str, Any]) -> str:
    e = html.escape
    head, rows = table_rows(data)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=l' if j == 0 else ''}>{e(c)}</td>" for j, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + f"</tr>{body}</table>"


def read_profile(run_dir: Path) -> dict[str, Any] | None:
    """The run's profile, restricted to the run itself (its folder name, or the only run in the
    file); ``None`` when there is none or it cannot be read (a report never fails over it)."""
    path = Path(run_dir) / CAPABILITIES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs = data["runs"]
        label = Path(run_dir).resolve().name
        mine = label if label in runs else (next(iter(runs)) if len(runs) == 1 else None)
        if mine is None:
            return None
        return {**data, "runs": {mine: runs[mine]}}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def report_section(run_dir: Path) -> str:
    """The capability section of the run's report ("" when the run has no profile)."""
    data = read_profile(run_dir)
    if data is None:
        return ""
    e = html.escape
    try:
        table = html_table(data)
    except (KeyError, TypeError, ValueError, IndexError):
        return ""
    ((label, run),) = data["runs"].items()
    bar = Path(run_dir) / CAPABILITIES_BAR
    img = (
        f'<div class=plots><img alt="capability scores" src="data:image/png;base64,'
        f'{base64.b64encode(bar.read_bytes()).decode()}"></div>'
        if bar.is_file()
        else ""
    )
    return (
        f"{BEGIN}<h2>capabilities</h2><p class=meta>AtomThink capability profile of {e(label)}: "
        f"classifier <code>{e(str(data.get('classifier')))}</code>, scorer "
        f"<code>{e(str(data.get('scorer')))}</code>; weakest capability: <b>{e(str(run.get('weakest')))}</b> "
        f'(<a href="{CAPABILITIES}">{CAPABILITIES}</a>, written by slowthink analyze capabilities)</p>'
        f"{table}{img}{END}"
    )


def splice(page: str, section: str) -> str:
    """``page`` with its capability section replaced by ``section`` (added before ``</body>``
    when it has none; removed when ``section`` is empty)."""
    start, end = page.find(BEGIN), page.find(END)
    if start >= 0 and end > start:
        return page[:start] + section + page[end + len(END) :]
    cut = page.rfind("</body>")
    return page + section if cut < 0 else page[:cut] + section + page[cut:]


def update_report(run_dir: Path, report: str = "report.html") -> bool:
    """Splice the run's capability section into its report; False when the run has no report."""
    path = Path(run_dir) / report
    if not path.is_file():
        return False
    page = path.read_text(encoding="utf-8")
    path.write_text(splice(page, report_section(run_dir)), encoding="utf-8")
    return True
