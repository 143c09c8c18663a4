"""The viewer page: one self-contained HTML file (inline CSS and script, no network).

The data (a list of :func:`~slowthink.inspect.tree.problem_view` dicts) is embedded once as JSON in
a ``<script type="application/json">`` block and rendered by the page's script: the problem list at
once, a tree only when its problem is selected, and a node's children only when it is expanded, so
a run of thousands of problems opens fast. Model text is untrusted: the JSON is escaped so that no
``</script>`` or ``<!--`` can end the block, and the script puts text into the page with
``textContent`` only, never as HTML.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Characters that could end or confuse the JSON block inside HTML, and their JSON escapes.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(obj: Any) -> str:
    """``obj`` as JSON that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.translate(str.maketrans(_JSON_ESCAPES))


CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;display:flex;height:100vh}
#side{width:300px;border-right:1px solid #ccc;display:flex;flex-direction:column}
#side .bar{padding:8px;border-bottom:1px solid #ddd}
#side .bar label{margin-right:6px;white-space:nowrap}
#list{overflow:auto;flex:1}
#list div{padding:3px 8px;cursor:pointer;border-bottom:1px solid #f0f0f0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#list div.sel{background:#dde8ff}
.ok{color:#1a7f37}.bad{color:#c62828}.unk{color:#777}
#main{flex:1;overflow:auto;padding:12px 18px}
h1{font-size:18px;margin:0 0 6px}
.meta{color:#555;font-size:13px}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;font:13px/1.35 ui-monospace,monospace;background:#f7f7f7;padding:6px;border-radius:4px}
.node{margin-left:18px;border-left:2px solid #ddd;padding-left:6px;margin-top:3px}
.node.chosen{border-left:4px solid #1a7f37}
.node.chosen>.head{background:#e3f6e8}
.node.rejected>.head{color:#999}
.head{cursor:pointer;padding:2px 4px;border-radius:3px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.head:hover{background:#eef}
.tog{display:inline-block;width:14px;color:#666}
.tag{display:inline-block;font-size:11px;padding:0 5px;border-radius:8px;background:#eee;margin-right:4px}
.tag.c{background:#1a7f37;color:#fff}.tag.r{background:#c62828;color:#fff}.tag.f{background:#1565c0;color:#fff}
.body{margin:2px 0 4px 18px}
.prev{color:#555}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
.tools button{margin-right:4px}
"""

#: The page's script: renders ``DATA`` (the JSON block) lazily, text via textContent only.
SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("st-data").textContent);
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function num(x, d) { return x === null || x === undefined ? "–" : (typeof x === "number" ? +x.toFixed(d === undefined ? 3 : d) : String(x)); }
function mark(p) { return p.correct === true ? ["✓", "ok"] : p.correct === false ? ["✗", "bad"] : ["·", "unk"]; }
let current = -1;
const list = $("list");
const rows = [];
function filterList() {
  const want = document.querySelector("input[name=f]:checked").value;
  const strat = $("strat").value, q = $("q").value.trim().toLowerCase();
  let shown = 0;
  for (let i = 0; i < DATA.problems.length; i++) {
    const p = DATA.problems[i];
    const ok = (want === "all" || (want === "correct" ? p.correct === true : p.correct === false))
      && (!strat || p.strategy === strat) && (!q || String(p.id).toLowerCase().includes(q));
    rows[i].style.display = ok ? "" : "none";
    if (ok) shown++;
  }
  $("count").textContent = shown + " / " + DATA.problems.length;
}
function buildList() {
  const frag = document.createDocumentFragment();
  const strats = new Set();
  DATA.problems.forEach((p, i) => {
    const [m, cls] = mark(p);
    const d = el("div");
    d.dataset.i = i;
    d.appendChild(el("span", cls, m + " "));
    d.appendChild(document.createTextNode(p.id + " · " + p.strategy + (p.key ? " " + p.key : "")));
    d.title = p.id;
    rows.push(d);
    frag.appendChild(d);
    strats.add(p.strategy);
  });
  list.appendChild(frag);
  list.addEventListener("click", (ev) => {
    const d = ev.target.closest("div[data-i]");
    if (d) show(+d.dataset.i);
  });
  for (const s of strats) { const o = el("option", null, s); o.value = s; $("strat").appendChild(o); }
  document.querySelectorAll("input[name=f]").forEach((r) => r.addEventListener("change", filterList));
  $("strat").addEventListener("change", filterList);
  $("q").addEventListener("input", filterList);
  filterList();
}
function computeTable(c) {
  const t = el("table");
  const keys = [["policy prompt tok", c.prompt_tokens], ["policy gen tok", c.generated_tokens], ["samples", c.samples],
    ["engine calls", c.engine_calls], ["scorer prompt tok", c.scorer_prompt_tokens], ["scorer gen tok", c.scorer_generated_tokens],
    ["scorer calls", c.scorer_calls], ["wall s (batch)", num(c.wall_time_s, 2)], ["batch size", c.batch_size]];
  const h = el("tr"), r = el("tr");
  for (const [k, v] of keys) { h.appendChild(el("th", null, k)); r.appendChild(el("td", null, v)); }
  t.appendChild(h); t.appendChild(r);
  return t;
}
function nodeHead(n) {
  const h = el("div", "head");
  h.appendChild(el("span", "tog", n.kids.length || n.text ? "▸" : " "));
  h.appendChild(el("span", "tag", "#" + n.id + " " + n.kind));
  if (n.chosen) h.appendChild(el("span", "tag c", "chosen"));
  if (n.rejected !== null) h.appendChild(el("span", "tag r", "rejected: " + n.rejected));
  if (n.final) h.appendChild(el("span", "tag f", "final" + (n.answer !== null ? ": " + n.answer : "")));
  if (n.score !== null) h.appendChild(el("span", "tag", "score " + num(n.score)));
  if (n.step_score !== null) h.appendChild(el("span", "tag", "step " + num(n.step_score)));
  if (n.decisions) {
    const won = n.decisions.filter((d) => d.won).length;
    h.appendChild(el("span", "tag", "judge " + won + "/" + n.decisions.length + " won"));
  }
  h.appendChild(el("span", "tag", n.tokens + " tok" + (n.kids.length ? " (subtree " + n.subtree_tokens + ")" : "")));
  h.appendChild(el("span", "prev", n.text.replace(/\s+/g, " ").slice(0, 120)));
  return h;
}
function nodeBody(p, n) {
  const b = el("div", "body");
  if (n.text) b.appendChild(el("pre", "text", n.text));
  const facts = [];
  if (n.finish) facts.push("finish: " + n.finish);
  if (n.note) facts.push("note: " + n.note);
  if (facts.length) b.appendChild(el("div", "meta", facts.join(" · ")));
  if (n.decisions) {
    const ul = el("ul", "meta");
    for (const d of n.decisions) {
      ul.appendChild(el("li", null, (d.won ? "won against #" : "lost to #") + d.vs + (d.stage ? " · stage " + d.stage : "")
        + (d.round !== null && d.round !== undefined ? " · round " + d.round : "") + " · by " + d.by
        + (d.checked === undefined ? "" : " · reasoning check: " + (d.checked ? "correct" : "incorrect"))
        + (d.parsed === false ? " · judge reply unparsed" : "")));
    }
    b.appendChild(ul);
  }
  const kids = el("div", "kids");
  b.appendChild(kids);
  return b;
}
function toggle(p, n, box, open) {
  let body = box.querySelector(":scope > .body");
  if (open === undefined) open = !body || body.style.display === "none";
  if (open && !body) {
    body = nodeBody(p, n);
    box.appendChild(body);
    const kids = body.querySelector(":scope > .kids");
    for (const k of n.kids) kids.appendChild(nodeBox(p, p.byId[k]));
  }
  if (body) body.style.display = open ? "" : "none";
  box.querySelector(":scope > .head > .tog").textContent = n.kids.length || n.text ? (open ? "▾" : "▸") : " ";
  return body;
}
function nodeBox(p, n) {
  const box = el("div", "node" + (n.chosen ? " chosen" : "") + (n.rejected !== null ? " rejected" : ""));
  box.dataset.node = n.id;
  const h = nodeHead(n);
  h.addEventListener("click", () => toggle(p, n, box));
  box.appendChild(h);
  return box;
}
function prepare(p) {
  if (p.byId) return;
  p.byId = {};
  for (const n of p.nodes) { n.kids = []; p.byId[n.id] = n; }
  for (const n of p.nodes) if (n.parent !== null && p.byId[n.parent]) p.byId[n.parent].kids.push(n.id);
}
function openWhere(p, pred) {
  // open every node for which pred(n) holds, root first, so that their boxes exist
  const root = $("tree");
  const walk = (box, n) => {
    if (!pred(n)) return;
    toggle(p, n, box, true);
    for (const k of n.kids) {
      const kb = box.querySelector(':scope > .body > .kids > [data-node="' + k + '"]');
      if (kb) walk(kb, p.byId[k]);
    }
  };
  for (const box of root.children) walk(box, p.byId[+box.dataset.node]);
}
function show(i) {
  const p = DATA.problems[i];
  prepare(p);
  if (current >= 0) rows[current].classList.remove("sel");
  rows[i].classList.add("sel");
  current = i;
  const m = $("main");
  m.textContent = "";
  const [mk, cls] = mark(p);
  const h = el("h1");
  h.appendChild(el("span", cls, mk + " "));
  h.appendChild(document.createTextNode(p.id + " · " + p.strategy + (p.key ? " " + p.key : "") + " · " + p.format));
  m.appendChild(h);
  if (p.question !== null && p.question !== undefined) m.appendChild(el("pre", "question", p.question));
  m.appendChild(el("div", "meta", "answer: " + num(p.answer) + " · gold: " + num(p.gold)
    + (p.error ? " · error: " + p.error : "")));
  if (p.votes) m.appendChild(el("div", "meta", "votes: " + Object.entries(p.votes).map(([a, v]) => a + "=" + num(v)).join(", ")));
  for (const note of p.notes || []) m.appendChild(el("div", "meta", "note: " + note));
  m.appendChild(el("div", "meta", "compute (all nodes, scorer and judge included):"));
  m.appendChild(computeTable(p.compute));
  const tools = el("div", "tools");
  const btn = (label, f) => { const b = el("button", null, label); b.addEventListener("click", f); tools.appendChild(b); };
  btn("chosen path", () => { rebuild(p); openWhere(p, (n) => n.chosen); });
  btn("expand all", () => openWhere(p, () => true));
  btn("collapse all", () => rebuild(p));
  const lvl = el("select"); lvl.id = "level";
  for (let d = 1; d <= Math.min(12, p.nodes.reduce((m, n) => Math.max(m, n.depth), 1)); d++) { const o = el("option", null, "open to depth " + d); o.value = d; lvl.appendChild(o); }
  lvl.addEventListener("change", () => { rebuild(p); openWhere(p, (n) => n.depth < +lvl.value); });
  tools.appendChild(lvl);
  m.appendChild(tools);
  const tree = el("div"); tree.id = "tree";
  m.appendChild(tree);
  rebuild(p);
  openWhere(p, (n) => n.chosen);
  if ((p.decisions || []).length) {
    m.appendChild(el("h2", null, "judge decisions"));
    const t = el("table");
    const hr = el("tr");
    for (const k of ["stage", "round", "a", "b", "winner", "parsed", "by"]) hr.appendChild(el("th", null, k));
    t.appendChild(hr);
    for (const d of p.decisions) {
      const r = el("tr");
      for (const k of ["stage", "round", "a", "b", "winner", "parsed", "by"]) r.appendChild(el("td", null, d[k] === undefined ? "" : d[k]));
      t.appendChild(r);
    }
    m.appendChild(t);
  }
  location.hash = "p=" + i;
}
function rebuild(p) {
  const tree = $("tree");
  tree.textContent = "";
  const roots = p.nodes.filter((n) => n.parent === null || !p.byId[n.parent]);
  for (const n of roots) tree.appendChild(nodeBox(p, n));
}
buildList();
const start = /^#p=(\d+)$/.exec(location.hash);
if (DATA.problems.length) show(start && +start[1] < DATA.problems.length ? +start[1] : 0);
document.body.dataset.ready = "1";
"""


def totals(problems: Sequence[dict[str, Any]]) -> str:
    """One line: problems, right/wrong, and the compute of them all."""
    right = sum(1 for p in problems if p["correct"] is True)
    wrong = sum(1 for p in problems if p["correct"] is False)
    c = [p["compute"] for p in problems]
    gen = sum(x["generated_tokens"] for x in c)
    sgen = sum(x["scorer_generated_tokens"] for x in c)
    prompt = sum(x["prompt_tokens"] + x["scorer_prompt_tokens"] for x in c)
    nodes = sum(len(p["nodes"]) for p in problems)
    return (
        f"{len(problems)} traces ({right} right, {wrong} wrong) · {nodes} nodes · generated tokens "
        f"{gen} policy + {sgen} scorer/judge · prompt tokens {prompt}"
    )


def render_page(problems: Sequence[dict[str, Any]], title: str = "slowthink view") -> str:
    """The whole viewer page of ``problems`` (viewer dicts) as one HTML string."""
    data = {"problems": list(problems)}
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<link rel=icon href="data:,"><title>{html.escape(title)}</title><style>{CSS}</style></head><body>'
        "<div id=side><div class=bar><b>problems</b> <span id=count class=meta></span><br>"
        "<label><input type=radio name=f value=all checked> all</label>"
        "<label><input type=radio name=f value=correct> correct</label>"
        "<label><input type=radio name=f value=wrong> wrong</label><br>"
        '<select id=strat><option value="">every strategy</option></select> '
        '<input id=q placeholder="problem id" size=12>'
        f"<div id=total class=meta>{html.escape(totals(problems))}</div></div><div id=list></div></div>"
        "<div id=main></div>"
        f'<script type="application/json" id="st-data">{embed_json(data)}</script>'
        f"<script>{SCRIPT}</script></body></html>"
    )


def write_page(problems: Sequence[dict[str, Any]], path: Path, title: str = "slowthink view") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(problems, title), encoding="utf-8")
    return path
