"""README and Makefile tell the truth: the quickstart, the command table, the Python API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .helpers import ROOT, cli_env

README = (ROOT / "README.md").read_text()


def _code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _registered_commands() -> set[str]:
    import typer.main

    from agentform.api.cli import _register_commands, app

    _register_commands()
    return set(typer.main.get_command(app).commands)


def test_readme_starts_with_the_two_command_quickstart():
    first = README.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first.splitlines()[1:]]
    assert [c for c in commands if c] == ["make demo", "make test"]
    assert README.index("make demo") < README.index("## ")


def test_command_table_marks_exactly_the_registered_commands():
    rows = [line for line in README.splitlines() if line.startswith("| `") and line.count("|") >= 5]
    available, later = set(), set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[-1] not in ("yes", "later issue"):
            continue
        names = set(re.findall(r"`([a-z]+)", cells[0]))
        (available if cells[-1] == "yes" else later).update(names)
    registered = _registered_commands()
    assert registered - available == set(), "registered commands missing from the README table"
    assert available - registered == set(), "the README marks commands that do not exist"
    assert not (later & registered), "commands that now exist are still marked 'later issue'"


def test_makefile_has_the_targets_the_readme_names():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "bench", "schemas", "lint", "clean"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
        assert f"make {target}" in README
    done = subprocess.run(["make", "-n", "-C", str(ROOT), "schemas"], capture_output=True, text=True)
    assert "agentform schema --out schemas" in done.stdout
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")]).returncode == 0


def test_python_api_snippet_runs(tmp_path: Path):
    (snippet,) = [b for b in _code_blocks("python") if "from agentform import Engine" in b]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, env=cli_env(), capture_output=True,
        text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert " succeeded Synthesis:" in lines[0]
    assert "1 run.started " in lines and lines[-1].split()[1] == "run.completed"
