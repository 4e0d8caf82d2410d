"""The layering DESIGN.md asks for, read from the source: the engine never imports Textual or the pages,
and the pages reach the node only through the engine (Session and the steps' typed results)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# what a page may import from the engine; anything else (wizard.node, wizard.undo, wizard.flannel, ...)
# would let it read the node or re-derive what the engine decides
PAGE_MAY_IMPORT = {
    "wizard.answers", "wizard.errors", "wizard.events", "wizard.session", "wizard.savefile", "wizard.steps",
    "wizard.changes", "wizard.scenarios",
    "wizard.proxypath",  # the typed kube-proxy path and its tree, which events carry: a page draws it
}


def _imports(path: Path) -> list[tuple[str, int, bool, list[str]]]:
    """(module, line, under TYPE_CHECKING, names) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                typing_only.add(id(inner))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, id(node) in typing_only, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, node.lineno, id(node) in typing_only, [a.name for a in node.names]))
    return out


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("wizard"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_engine_never_imports_textual_or_the_pages(path: Path) -> None:
    for module, line, _typing, _names in _imports(path):
        top = module.split(".")[0]
        if path.name == "cli.py" and module == "screens.launch":
            continue  # the one lazy door into the TUI, taken only by `flannel-wizard` and `demo`
        assert top not in ("textual", "rich", "screens"), f"{path.relative_to(REPO)}:{line} imports {module}"


def page_violations(path: Path) -> list[str]:
    out = []
    from wizard.steps import ORDER

    for module, line, typing_only, names in _imports(path):
        if not module.startswith("wizard"):
            continue
        allowed = any(module == m or module.startswith(m + ".") for m in PAGE_MAY_IMPORT)
        if module == "wizard.steps":
            allowed = not set(names) & set(ORDER)  # ORDER, Plan: yes; a step module, to call its inspect: no
        if module.startswith("wizard.steps.") or module == "wizard.runner":
            # a step's Facts / Output types for annotations, and its constants (the smoke test's sub-step titles)
            allowed = typing_only or all(n.isupper() for n in names)
        if not allowed:
            out.append(f"{path.name}:{line} imports {module}")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "node":
            out.append(f"{path.name}:{node.lineno}: `{ast.unparse(node)}` reaches the node past the engine")
    return out


@pytest.mark.parametrize("path", _sources("screens"), ids=lambda p: str(p.relative_to(REPO)))
def test_pages_reach_the_node_only_through_the_engine(path: Path) -> None:
    assert page_violations(path) == []


def test_the_rules_catch_a_page_that_reads_the_node(tmp_path: Path) -> None:
    page = tmp_path / "bad.py"
    page.write_text("from wizard.node.links import Links\nfrom wizard.steps import network\n"
                    "from wizard.steps.docker import Facts\n\n"
                    "def f(self):\n    return self.session.node.links\n")
    assert page_violations(page) == [
        "bad.py:1 imports wizard.node.links",
        "bad.py:2 imports wizard.steps",
        "bad.py:3 imports wizard.steps.docker",
        "bad.py:6: `self.session.node` reaches the node past the engine",
    ]
