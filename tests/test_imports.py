"""Import rules of the package (docs/ARCHITECTURE.md, "Import rules"), read from the source with ast:

- no import cycle among slowthink modules (module-level imports; importing ``a.b.c`` also runs the
  ``a`` and ``a.b`` package ``__init__`` files);
- no module imports a private module or a private name (``_name``) of another package;
- imports sit at the top of the module; a function imports only an optional heavy dependency
  (or a slowthink module that imports one), so ``import slowthink.<anything>`` stays light.

The checks are pure functions of a {module: source} mapping, so each is also tested on a small
made-up package that breaks it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Optional dependencies (extras of pyproject.toml, and vllm) by import name: the only third-party
#: modules a function may import, so that importing slowthink never pulls them in.
OPTIONAL = frozenset(
    {
        "torch",
        "transformers",
        "llama_cpp",
        "vllm",
        "httpx",
        "jinja2",
        "matplotlib",
        "numpy",
        "pandas",
        "openpyxl",
        "pyarrow",
        "reasoning_gym",
        "math_verify",
        "ray",
        "trl",
        "peft",
        "datasets",
        "accelerate",
        "safetensors",
        "gguf",
        "starlette",
        "uvicorn",
    }
)
#: Run as a subprocess script, never imported: it caps its memory before importing math-verify and
#: reports a failed import over its pipe protocol, so its imports are where they are on purpose.
SCRIPTS = frozenset({"slowthink.grading._mv_worker"})
#: An import inside one of these runs when it is called, not when the module is imported.
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
#: Entry points that must stay light (no optional dependency on import).
ENTRY_POINTS = frozenset(
    {
        "slowthink.cli",
        "slowthink.engines",
        "slowthink.engines.hf",
        "slowthink.scorers",
        "slowthink.search",
        "slowthink.evaluate",
        "slowthink.serve",
    }
)


@dataclass(frozen=True)
class Imp:
    """One import statement's target as a dotted name (``pkg.mod`` or ``pkg.mod.name``)."""

    module: str  # the importing module
    target: str
    line: int
    top: bool  # at module level (also inside a module-level try/if), not in a function or class


def is_package(module: str, modules: dict[str, str]) -> bool:
    return any(m.startswith(module + ".") for m in modules)


def package_of(module: str, modules: dict[str, str]) -> str:
    return module if is_package(module, modules) else module.rpartition(".")[0]


def imports(module: str, source: str, modules: dict[str, str]) -> list[Imp]:
    """Every import of ``source`` (the module ``module``), relative imports resolved."""
    out: list[Imp] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend(Imp(module, a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package_of(module, modules).split(".")
                    parts = parts[: len(parts) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                out.extend(Imp(module, f"{base}.{a.name}", child.lineno, top) for a in child.names)
            else:
                visit(child, top and not isinstance(child, SCOPES))

    visit(ast.parse(source), True)
    return out


def owning_module(target: str, modules: dict[str, str]) -> str | None:
    """The slowthink module an import target names (``a.b.name`` -> ``a.b``), or None."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, str], *, top_only: bool = True) -> dict[str, set[str]]:
    """Module -> the modules its module-level imports (all imports: ``top_only=False``) run: the
    target and the packages above it (the importer's own packages are already running)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, source in modules.items():
        mine = {*ancestors(m), m}
        for imp in imports(m, source, modules):
            target = owning_module(imp.target, modules)
            if (imp.top or not top_only) and target is not None and target != m:
                graph[m] |= {target, *ancestors(target)} & modules.keys() - mine
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := dfs(start)):
            return found
    return None


def private_imports(modules: dict[str, str]) -> list[str]:
    """Imports (at any level) of a ``_private`` module or name from outside the package that owns it.

    A private part is visible in its own package and the packages below it.
    """
    bad = []
    for m, source in modules.items():
        for imp in imports(m, source, modules):
            parts = imp.target.split(".")
            if parts[0] != "slowthink":
                continue
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    home = package_of(owner, modules)
                    importer = package_of(m, modules)
                    if importer != home and not importer.startswith(home + "."):
                        bad.append(f"{m}:{imp.line} imports {imp.target} (private to {home})")
                    break
    return bad


def heavy_modules(modules: dict[str, str]) -> set[str]:
    """slowthink modules that import an optional dependency at module level, directly or through
    other slowthink modules: these may be imported inside a function."""
    direct = {
        m
        for m, s in modules.items()
        if any(i.top and i.target.split(".")[0] in OPTIONAL for i in imports(m, s, modules))
    }
    graph = import_graph(modules)
    heavy = set(direct)
    changed = True
    while changed:
        changed = False
        for m, targets in graph.items():
            if m not in heavy and targets & heavy:
                heavy.add(m)
                changed = True
    return heavy


def late_imports(modules: dict[str, str]) -> list[str]:
    """Imports inside a function or class that are neither an optional dependency nor a heavy
    slowthink module (those belong at the top of the module)."""
    heavy = heavy_modules(modules)
    bad = []
    for m, source in modules.items():
        if m in SCRIPTS:
            continue
        for imp in imports(m, source, modules):
            if imp.top:
                continue
            root = imp.target.split(".")[0]
            if root in OPTIONAL or owning_module(imp.target, modules) in heavy:
                continue
            bad.append(f"{m}:{imp.line} imports {imp.target} inside a function; move it to the top")
    return bad


def package_sources(root: Path = SRC) -> dict[str, str]:
    out = {}
    for path in sorted((root / "slowthink").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


# --- the package ---------------------------------------------------------------------------------
MODULES = package_sources()


def test_the_whole_package_is_read() -> None:
    assert {"slowthink", "slowthink.formats.base", "slowthink.grading.judge"} | ENTRY_POINTS <= set(MODULES)


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph(MODULES)) is None


def test_no_import_cycle_through_function_level_imports_either() -> None:
    # A function-level import hides a cycle until the function runs; none may hide one.
    assert find_cycle(import_graph(MODULES, top_only=False)) is None


def test_no_private_import_across_packages() -> None:
    assert private_imports(MODULES) == []


def test_imports_are_at_the_top_unless_optional_and_heavy() -> None:
    assert late_imports(MODULES) == []


def test_importing_any_module_pulls_in_no_optional_dependency() -> None:
    heavy = heavy_modules(MODULES) | SCRIPTS
    assert not heavy & ENTRY_POINTS  # the hf engine's decoder is its heavy part, not the engine module
    code = (
        "import importlib, sys\n"
        f"for name in {sorted(set(MODULES) - set(heavy))!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in {sorted(OPTIONAL)!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert out.stdout.strip() == "[]"


# --- the checks themselves, on made-up packages ----------------------------------------------------
def test_a_cycle_hidden_behind_package_init_files_is_found() -> None:
    fake = {
        "p": "",
        "p.a": "from p.b.x import f\n",
        "p.b": "from p.b.y import g\n",
        "p.b.x": "def f(): pass\n",
        "p.b.y": "import p.a\n",
    }
    assert find_cycle(import_graph(fake)) == ["p.a", "p.b", "p.b.y", "p.a"]
    fake["p.b.y"] = "def g():\n    import p.a\n"  # the same import inside a function: no module-level cycle
    assert find_cycle(import_graph(fake)) is None
    assert late_imports(fake) == ["p.b.y:2 imports p.a inside a function; move it to the top"]


def test_private_parts_are_visible_in_their_package_only() -> None:
    fake = {
        "slowthink": "",
        "slowthink.e": "",
        "slowthink.e._load": "def load(): pass\n",
        "slowthink.e.hf": "from slowthink.e._load import load\nfrom ._load import load as again\n",
        "slowthink.e.sub": "",
        "slowthink.e.sub.x": "from slowthink.e import _load\n",
        "slowthink.s": "",
        "slowthink.s.prm": "def f():\n    from slowthink.e._load import load\n    from slowthink.e.hf import _private\n",
    }
    assert private_imports(fake) == [
        "slowthink.s.prm:2 imports slowthink.e._load.load (private to slowthink.e)",
        "slowthink.s.prm:3 imports slowthink.e.hf._private (private to slowthink.e)",
    ]


@pytest.mark.parametrize(
    ("body", "late"),
    [
        ("def f():\n    import torch\n", []),
        ("def f():\n    import json\n", ["p.m:2 imports json inside a function; move it to the top"]),
        ("def f():\n    from p.heavy import g\n", []),
        (
            "def f():\n    from p.light import g\n",
            ["p.m:2 imports p.light.g inside a function; move it to the top"],
        ),
        ("try:\n    import yaml\nexcept ImportError:\n    yaml = None\n", []),
    ],
)
def test_late_imports_only_of_optional_or_heavy_modules(body: str, late: list[str]) -> None:
    fake = {"p": "", "p.heavy": "import transformers\n", "p.light": "import json\n", "p.m": body}
    assert late_imports(fake) == late


# -- package layering (docs/ARCHITECTURE.md "Import rules" and "Packages to come") -----------------
#: For each top-level package (or module) of slowthink: the slowthink packages it may import. A
#: package not yet written is listed so that it lands in the agreed shape.
BASE = frozenset({"types", "options", "images"})
ALLOWED: dict[str, frozenset[str]] = {
    "types": frozenset(),
    "options": frozenset({"types"}),
    "images": frozenset({"types"}),
    "prompts": frozenset({"types"}),
    "engines": BASE,
    "benchmarks": BASE,
    "grading": BASE | {"prompts"},
    "formats": BASE | {"prompts", "grading"},
    "display": BASE | {"formats", "grading"},
    "scorers": BASE | {"prompts", "grading", "formats", "engines"},
    "search": BASE | {"prompts", "grading", "formats", "engines", "scorers"},
    "clifields": BASE,
    "clikit": BASE | {"clifields"},
    "evaluate": BASE
    | {
        "prompts",
        "grading",
        "formats",
        "engines",
        "scorers",
        "search",
        "benchmarks",
        "clifields",
        "clikit",
        "jsonl",
        "distributed",
        "inspect",
        "stats",
        "progress",
    },
    "jsonl": BASE,
    "distributed": BASE,
    "stats": frozenset(),
    # the progress bars of the long loops (eval, annotate)
    "progress": frozenset(),
    # AtomThink's capability analysis: reads run folders, runs a classifier model and a step scorer;
    # rollout step scores come from the data engine's labeller (annotate)
    "analyze": BASE
    | {
        "annotate",
        "prompts",
        "grading",
        "formats",
        "engines",
        "scorers",
        "jsonl",
        "clifields",
        "clikit",
        "inspect",
        "stats",
    },
    # packages to come
    "annotate": BASE
    | {
        "prompts",
        "grading",
        "formats",
        "engines",
        "scorers",
        "search",
        "benchmarks",
        "clifields",
        "clikit",
        "jsonl",
        "distributed",
        "progress",
    },
    # train builds PRM inputs with the prm scorer itself (one place for the input layout)
    "train": BASE | {"prompts", "formats", "engines", "scorers", "clifields", "clikit"},
    "inspect": BASE | {"prompts", "grading", "formats", "jsonl", "clifields", "clikit"},
    "serve": BASE | {"prompts", "grading", "formats", "engines", "scorers", "search", "clifields", "clikit"},
}
#: On top of everything: the command line may import any package.
TOP = frozenset({"cli", "__main__"})


def layer_violations(modules: dict[str, str]) -> list[str]:
    """``a -> b`` for each import of package ``b`` by package ``a`` that :data:`ALLOWED` forbids,
    and each package missing from the table (a new package must be placed on purpose)."""
    out = []
    graph = import_graph(modules, top_only=False)

    def top(m: str) -> str:
        parts = m.split(".")
        return parts[1] if len(parts) > 1 else ""

    for a, targets in sorted(graph.items()):
        pa = top(a)
        if not pa or pa in TOP:
            continue
        if pa not in ALLOWED:
            out.append(f"{pa}: not placed in ALLOWED (tests/test_imports.py) nor in docs/ARCHITECTURE.md")
            continue
        for b in sorted(targets):
            pb = top(b)
            if pb and pb != pa and pb not in ALLOWED[pa]:
                out.append(f"{a} -> {b}: package '{pa}' may not import '{pb}'")
    return sorted(set(out))


def test_packages_import_only_the_layers_below_them() -> None:
    assert layer_violations(package_sources()) == []


def test_a_layering_violation_is_found() -> None:
    modules = {
        "slowthink": "",
        "slowthink.types": "",
        "slowthink.engines": "",
        "slowthink.engines.x": "from slowthink.search import solve\n",
        "slowthink.search": "",
        "slowthink.newpkg": "",
        "slowthink.newpkg.y": "import slowthink.types\n",
    }
    found = layer_violations(modules)
    assert "slowthink.engines.x -> slowthink.search: package 'engines' may not import 'search'" in found
    assert any(v.startswith("newpkg: not placed") for v in found)
