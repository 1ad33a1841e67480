"""One door: the faces under api/ (CLI, HTTP, MCP server) reach the engine only through
``agentform`` (Engine, its errors and result types), ``agentform.specs`` and ``agentform.api``.

Every import in every module under api/ is checked, at any depth (function bodies too),
relative ones resolved, and ``importlib.import_module("...")`` with a literal name as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .helpers import ROOT

API = ROOT / "api"
FORBIDDEN = ("agentform.engine", "agentform.operators")


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "agentform." + ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def violations(source: str, filename: str, module: str, is_package: bool = False) -> list[str]:
    """``file:line: what`` for each import of an engine or operators module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            # `from agentform import engine` imports the subpackage as well
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        bad = sorted({n for n in names if _forbidden(n)})
        if bad:
            found.append(f"{filename}:{node.lineno}: imports {bad[0]}")
    return found


def test_no_face_imports_an_engine_or_operators_module():
    files = sorted(p for p in API.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(files) > 10 and API / "cli" / "__init__.py" in files
    found = []
    for path in files:
        found += violations(path.read_text("utf-8"), str(path.relative_to(ROOT)), _module_of(path),
                            path.name == "__init__.py")
    assert not found, ("the faces go through agentform.Engine only (export what they need from "
                       "_agentform/__init__.py):\n" + "\n".join(found))


@pytest.mark.parametrize("source, line, name", [
    ("import agentform.engine.api\n", 1, "agentform.engine.api"),
    ("from agentform.engine.errors import UsageError\n", 1, "agentform.engine.errors"),
    ("def f():\n    if True:\n        from agentform.operators import agent\n", 3, "agentform.operators"),
    ("from agentform import engine\n", 1, "agentform.engine"),
    ("from ... import operators\n", 1, "agentform.operators"),      # in api/cli/x.py, ... is agentform
    ("from ...engine import store\n", 1, "agentform.engine"),
    ("import importlib\nimportlib.import_module('agentform.engine.reconcile')\n", 2, "agentform.engine.reconcile"),
    ("class A:\n    def m(self):\n        import agentform.engine\n", 3, "agentform.engine"),
])
def test_the_check_sees_every_form_of_import(source, line, name):
    assert violations(source, "api/cli/x.py", "agentform.api.cli.x") == [f"api/cli/x.py:{line}: imports {name}"]


@pytest.mark.parametrize("source", [
    "from agentform import Engine, UsageError\n",
    "from agentform.specs import ResourceKey\n",
    "from agentform.api.cli import app\n",
    "from .. import cli\n",
    "import agentform.engineering_notes\n",          # a name that merely starts alike
])
def test_the_check_allows_the_door(source):
    assert violations(source, "api/cli/x.py", "agentform.api.cli.x") == []


def test_public_exports_are_listed_and_resolve():
    import agentform

    assert sorted(agentform.__all__) == sorted([*agentform._EXPORTS, "__version__"])
    for name in agentform.__all__:
        assert getattr(agentform, name) is not None, name
    with pytest.raises(AttributeError):
        agentform.NoSuchThing  # noqa: B018


def test_engine_offers_the_read_side_the_faces_share():
    from agentform import Engine

    for name in ("validate", "resources", "resource", "revisions", "revision", "revision_diff", "runs",
                 "run_info", "run_detail", "threads", "event_page", "events", "plan", "apply", "graph_mermaid",
                 "run", "resume", "approve", "cancel", "get_run", "replay", "fork", "export_run"):
        assert callable(getattr(Engine, name, None)), f"Engine.{name} is missing"
