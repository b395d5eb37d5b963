"""The import rule of docs/architecture.md: no module of s1 imports, even inside a function, a module that
imports it back (directly or round a longer circle); no stage package imports the cluster layer."""

from __future__ import annotations

import ast

from conftest import REPO

STAGE_PACKAGES = ("s1.curate", "s1.train", "s1.eval", "s1.infer", "s1.data")


def s1_imports() -> dict[str, set[str]]:
    """module -> the s1 modules it imports anywhere in its code (a package __init__ counts as the package)."""
    files = {}
    for path in (REPO / "s1").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        files[name] = path
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "s1":
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "s1"}
        graph[name] = {t for t in found if t in files and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    # a package __init__ that re-exports its own modules is no circle: drop the edge from a module to its package
    graph = {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in s1_imports().items()}
    assert circles(graph) == []


def test_the_circle_finder_finds_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_stage_imports_the_cluster_layer():
    up = {m: sorted(t for t in deps if t == "s1.cluster" or t.startswith("s1.cluster."))
          for m, deps in s1_imports().items() if m.startswith(STAGE_PACKAGES)}
    assert {m: deps for m, deps in up.items() if deps} == {}


def test_eval_does_not_import_the_report_layer():
    # the report renders eval's tables (s1.eval.tables); the paper's numbers sit below both (s1.paper_numbers)
    up = {m: sorted(t for t in deps if t == "s1.report" or t.startswith("s1.report."))
          for m, deps in s1_imports().items() if m.startswith("s1.eval")}
    assert {m: deps for m, deps in up.items() if deps} == {}


def test_training_imports_nothing_from_the_engine_layer():
    # the strings training writes (the s1 format, the conditional-control markers) live in s1.format
    down = {m: sorted(t for t in deps if t == "s1.infer" or t.startswith("s1.infer."))
            for m, deps in s1_imports().items() if m.startswith("s1.train")}
    assert {m: deps for m, deps in down.items() if deps} == {}
