"""The capability profile's files: ``capabilities.json``, ``capabilities.md`` (table),
``capabilities.html`` (the same table, self-contained), ``capabilities_bar.png`` and
``capabilities_radar.png`` (matplotlib, headless Agg backend; the radar has an axis per capability
some run has steps of, when there are three or more)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from slowthink.analyze.profile import Profile
from slowthink.inspect.capabilities import (
    CAPABILITIES,
    CAPABILITIES_BAR,
    html_table,
    table_rows,
    update_report,
)
from slowthink.types import SlowthinkError


def markdown(data: dict[str, Any]) -> str:
    head, rows = table_rows(data)
    lines = [
        f"Capability profile — classifier `{data['classifier']}` "
        f"({data['classifier_fallbacks']} fallbacks to rules), scorer `{data['scorer']}`",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        *(f"- weakest capability of {r}: **{v['weakest']}**" for r, v in data["runs"].items()),
    ]
    return "\n".join(lines) + "\n"


def html_page(data: dict[str, Any]) -> str:
    e = html.escape
    weakest = "".join(
        f"<li>weakest capability of {e(r)}: <b>{e(str(v['weakest']))}</b></li>"
        for r, v in data["runs"].items()
    )
    return (
        "<!doctype html><meta charset=utf-8><title>slowthink capability profile</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l{text-align:left}</style>"
        f"<h1>Capability profile</h1><p>classifier <code>{e(data['classifier'])}</code> "
        f"({data['classifier_fallbacks']} fallbacks to rules), scorer <code>{e(data['scorer'])}</code></p>"
        f"{html_table(data)}<ul>{weakest}</ul>\n"
    )


def plot_bar(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c["name"] for c in data["capabilities"]]
    runs = list(data["runs"])
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    for k, r in enumerate(runs):
        caps = data["runs"][r]["capabilities"]
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(names))]
        ys = [caps[n]["score"] or 0.0 for n in names]
        err = [
            [y - (caps[n]["ci95"] or [y, y])[0] for n, y in zip(names, ys)],
            [(caps[n]["ci95"] or [y, y])[1] - y for n, y in zip(names, ys)],
        ]
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=r)
        for x, n in zip(xs, names):
            ax.text(x, 0.01, str(caps[n]["steps"]), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"score ({data['scorer']})")
    ax.set_title("Capability scores (95% Wilson interval; step counts at the base)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_radar(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c["name"] for c in data["capabilities"]]
    # an axis per capability that some run has steps of (a score of 0 would read as a failure)
    seen = [n for n in names if any(v["capabilities"][n]["steps"] for v in data["runs"].values())]
    names = seen if len(seen) >= 3 else names
    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    fig, ax = plt.subplots(figsize=(6, 6), subplot_kw={"projection": "polar"})
    for r, v in data["runs"].items():
        ys = [v["capabilities"][n]["score"] or 0.0 for n in names]
        ax.plot([*angles, angles[0]], [*ys, ys[0]], marker="o", label=r)
        ax.fill([*angles, angles[0]], [*ys, ys[0]], alpha=0.15)
    ax.set_xticks(angles, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(f"Capability profile ({data['scorer']}; capabilities with steps)")
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.15, -0.1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(profile: Profile, out: Path, plots: bool = True) -> dict[str, Path]:
    """Write the profile's files into ``out``; returns them by kind."""
    out.mkdir(parents=True, exist_ok=True)
    data = profile.to_dict()
    files = {
        "json": out / "capabilities.json",
        "md": out / "capabilities.md",
        "html": out / "capabilities.html",
    }
    files["json"].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    files["md"].write_text(markdown(data), encoding="utf-8")
    files["html"].write_text(html_page(data), encoding="utf-8")
    if plots:
        files["bar"] = plot_bar(data, out / CAPABILITIES_BAR)
        files["radar"] = plot_radar(data, out / "capabilities_radar.png")
    return files


def write_into_runs(data: dict[str, Any], runs: dict[str, Path], plots: bool = True) -> list[Path]:
    """Leave each run's profile in its folder (``capabilities.json`` restricted to the run, and its
    bar plot) and splice the capability table into the run's ``report.html`` when it has one
    (:mod:`slowthink.inspect.capabilities`, the contract with the evaluation's report); returns the
    reports updated."""
    updated = []
    for label, run in runs.items():
        mine = {**data, "runs": {label: data["runs"][label]}}
        bar = run / CAPABILITIES_BAR
        try:
            (run / CAPABILITIES).write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")
            if plots:
                plot_bar(mine, bar)
            elif bar.is_file():  # a bar plot of an earlier analysis would not match the new table
                bar.unlink()
            if update_report(run):
                updated.append(run / "report.html")
        except OSError as e:
            raise SlowthinkError(
                f"cannot write the capability profile into the run folder {run} ({e.strerror or e}); "
                "pass --no-into-runs to write it only to --out"
            ) from None
    return updated
