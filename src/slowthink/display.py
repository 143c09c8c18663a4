"""Readable terminal rendering of traces (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from slowthink.formats import get_format
from slowthink.grading import grade
from slowthink.types import Problem, Trace

STAGE_STYLE = {
    "summary": "cyan",
    "caption": "magenta",
    "reasoning": "yellow",
    "conclusion": "green",
    "step": "white",
    "final": "green",
    "answer": "green",
    "response": "white",
}


def render_trace(trace: Trace, problem: Problem | None = None, console: Console | None = None) -> None:
    console = console or Console()
    fmt = get_format(trace.format)
    parsed = fmt.parse(trace.response)
    body = []
    for i, step in enumerate(parsed.steps, 1):
        label = step.kind.upper() if fmt.name == "stages" else f"{i}"
        body.append(
            Text.assemble((f"{label:>10}  ", f"bold {STAGE_STYLE.get(step.kind, 'white')}"), step.text)
        )
    if not body:
        body.append(Text(trace.response or "(no text)", style="dim"))
    title = f"{trace.strategy} · {trace.format} · problem {trace.problem_id}"
    console.print(Panel(Group(*body), title=title, title_align="left"))
    if trace.votes:
        votes = ", ".join(f"{k}: {v:g}" for k, v in list(trace.votes.items())[:8])
        console.print(f"[bold]votes[/bold] {votes}")
    if trace.decisions:
        by_id = {n.id: n for n in trace.nodes}
        lines = []
        for d in trace.decisions:
            a, b, w = d["a"], d["b"], d["winner"]
            snippet = by_id[w].text.strip().replace("\n", " ")[:60]
            flag = "" if d.get("parsed", True) else " [yellow](unparsed verdict, rule applied)[/yellow]"
            if "check" in d:  # LLaVA-CoT's reasoning check ran first
                ok = {True: "correct", False: "incorrect", None: "unclear"}
                flag += f" [dim](check: #{a} {ok[d['check'][0]]}, #{b} {ok[d['check'][1]]}; decided by {d['by']})[/dim]"
            lines.append(f"  {d['stage']:<10} #{a} vs #{b} -> #{w}{flag}  [dim]{snippet}[/dim]")
        console.print("[bold]judge decisions[/bold]\n" + "\n".join(lines), highlight=False)
    rejected = [n for n in trace.nodes if n.note and n.note.startswith("rejected")]
    if rejected:
        console.print(
            f"[dim]{len(rejected)} rejected step(s) re-sampled: "
            + "; ".join(sorted({n.note.removeprefix("rejected: ") for n in rejected}))
            + "[/dim]"
        )
    for note in [*parsed.notes, *trace.notes]:
        console.print(f"[dim]note: {note}[/dim]")
    answer = trace.answer if trace.answer is not None else "[red]no answer[/red]"
    line = f"[bold]answer[/bold] {answer}"
    if problem is not None and problem.answer is not None:
        g = grade(trace.answer, problem)
        line += f"   gold {problem.answer}  " + (
            "[green]✓ correct[/green]" if g.correct else "[red]✗ wrong[/red]"
        )
    console.print(line)
    if trace.error:
        console.print(f"[red]error[/red] {trace.error}")
    console.print(compute_table(trace))


def compute_table(trace: Trace) -> Table:
    c = trace.compute
    t = Table(title="compute", show_header=True, header_style="bold", title_justify="left")
    for col in (
        "prompt tok",
        "generated tok",
        "samples",
        "engine calls",
        "scorer tok",
        "scorer calls",
        "nodes",
        "wall s",
    ):
        t.add_column(col, justify="right")
    t.add_row(
        str(c.prompt_tokens),
        str(c.generated_tokens),
        str(c.samples),
        str(c.engine_calls),
        str(c.scorer_prompt_tokens + c.scorer_generated_tokens),
        str(c.scorer_calls),
        str(len(trace.nodes) - 1),
        f"{c.wall_time_s:.1f}",
    )
    return t
