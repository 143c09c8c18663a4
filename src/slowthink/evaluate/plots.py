"""Scaling plots (matplotlib, Agg backend, PNG): accuracy vs N and accuracy vs tokens, one line per
series, log2 x axis, the Wilson 95% interval as a band.

``accuracy_vs_tokens.png`` has two panels (:data:`TOKEN_PANELS`): on the left, the default x axis,
**total compute** per problem (policy + scorer/judge tokens, prompt and generated: the row's
``total_tokens``); on the right, **policy only** (prompt + generated: ``policy_tokens``), so the
scorer's and judge's share is the gap between the two.

N-free strategies (direct, cot, quick) are one marker at N = 1. Path-wise series also get a dashed
"any sample right" line (the oracle: what a perfect verifier would reach on those samples).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from slowthink.evaluate.metrics import token_total
from slowthink.types import SlowthinkError

INSTALL_HINT = "matplotlib is not installed: pip install 'slowthink[plot]' (or pass --no-plots)"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SlowthinkError(INSTALL_HINT) from None
    return plt


def series(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped into plot series by strategy (``prefix`` names the run when comparing)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if not r.get("problems"):
            continue
        out.setdefault(f"{prefix}{r['strategy']}", []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r["n"] or 1)
    return out


#: x axes of the scaling plots: name -> (axis label, the row's value).
X_AXES: dict[str, tuple[str, Callable[[Mapping[str, Any]], float]]] = {
    "n": ("N (samples / candidates per step), log2", lambda r: r["n"] or 1),
    "total": (
        "total tokens per problem: policy + scorer/judge, prompt + generated (log2)",
        lambda r: token_total(r, "total_tokens"),
    ),
    "policy": (
        "policy tokens per problem: prompt + generated (log2)",
        lambda r: token_total(r, "policy_tokens"),
    ),
}

#: Panels of accuracy_vs_tokens.png, left to right; the first is the default x axis.
TOKEN_PANELS: tuple[str, ...] = ("total", "policy")

PANEL_TITLES = {"total": "total compute (policy + scorer/judge)", "policy": "policy only"}


def _plot(ax, data: Mapping[str, Sequence[Mapping[str, Any]]], axis: str) -> None:
    x_of = X_AXES[axis][1]
    for label, rows in data.items():
        xs = [max(float(x_of(r)), 1.0) for r in rows]
        ys = [r["accuracy"] for r in rows]
        lo = [r["ci95"][0] for r in rows]
        hi = [r["ci95"][1] for r in rows]
        if len(rows) == 1:
            ax.errorbar(xs, ys, yerr=[[ys[0] - lo[0]], [hi[0] - ys[0]]], fmt="s", capsize=4, label=label)
        else:
            (line,) = ax.plot(xs, ys, marker="o", label=label)
            ax.fill_between(xs, lo, hi, alpha=0.15, color=line.get_color())
    # Headroom: the share of problems with at least one right sample (path-wise series; series
    # drawn from the same samples have the same oracle and get one line).
    drawn: set[tuple[float, ...]] = set()
    for label, rows in data.items():
        if len(rows) < 2 or any(r.get("oracle") is None for r in rows):
            continue
        key = tuple(round(float(r["oracle"]), 6) for r in rows)
        if key in drawn:
            continue
        drawn.add(key)
        xs = [max(float(x_of(r)), 1.0) for r in rows]
        ax.plot(
            xs,
            [r["oracle"] for r in rows],
            linestyle="--",
            color="gray",
            linewidth=1,
            label=f"{label}: any sample right",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel(X_AXES[axis][0])
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    if data:
        ax.legend(fontsize=8)


def plot_scaling(
    data: Mapping[str, Sequence[Mapping[str, Any]]],
    out_dir: Path,
    title: str = "",
    stem: str = "",
    token_panels: Sequence[str] = TOKEN_PANELS,
) -> list[Path]:
    """Write ``{stem}accuracy_vs_n.png`` and ``{stem}accuracy_vs_tokens.png`` (one panel per
    ``token_panels`` entry, a key of :data:`X_AXES`; total compute first by default); return their paths."""
    plt = _pyplot()
    unknown = [a for a in token_panels if a not in X_AXES]
    if unknown or not token_panels:
        raise SlowthinkError(f"token plot panels {list(token_panels)}: choose from {', '.join(X_AXES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, axes in (("accuracy_vs_n", ("n",)), ("accuracy_vs_tokens", tuple(token_panels))):
        fig, subplots = plt.subplots(1, len(axes), figsize=(6.4 * len(axes), 4.2), dpi=110, squeeze=False)
        for ax, axis in zip(subplots[0], axes):
            _plot(ax, data, axis)
            if len(axes) > 1:
                ax.set_title(PANEL_TITLES.get(axis, axis), fontsize=9)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{stem}{name}.png"
        fig.savefig(path, format="png")
        plt.close(fig)
        paths.append(path)
    return paths
