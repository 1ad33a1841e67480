"""Paths in manifests stay inside the applied folder (issue 9, item 4; CONTRACT section 8).

A Model's ``script``, a KnowledgeBase's ``sources`` and a Workspace's ``seed`` that are
absolute, leave the folder through ``..``, or go through a symlink to outside it are refused
with an error at the field's node; a manifest file that is a symlink to outside is refused
and never opened (a FIFO outside proves it: opening one for reading would block).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from validate_helpers import AGENTFORM, HEADER, write_tree

from agentform.engine.validation import validate_path

AGENT = HEADER + "kind: Agent\nmetadata: {name: lead}\nspec: {model: m}\n"
SCRIPT = "agents:\n  lead:\n    - content: from the script\n"

# field -> (manifest with VALUE where the path goes, line, col of the value)
FIELDS = {
    "script": (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: scripted\n  script: VALUE\n", 6, 11),
    "sources": (HEADER + "kind: KnowledgeBase\nmetadata: {name: kb}\nspec:\n  sources:\n    - path: VALUE\n", 6, 13),
    "seed": (HEADER + "kind: Workspace\nmetadata: {name: ws}\nspec:\n  seed: VALUE\n", 5, 9),
}
FIELD_NAME = {"script": "spec.script", "sources": "spec.sources[0].path", "seed": "spec.seed"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``repo/`` (the applied folder, the current directory) next to ``outside/``."""
    outside = write_tree(tmp_path / "outside", {"x.yaml": SCRIPT, "docs/a.md": "outside text\n"})
    (outside / "seed").mkdir()
    repo = write_tree(tmp_path / "repo", {"agents.yaml": AGENT, "scripts/ok.yaml": SCRIPT, "docs/in.md": "hi\n"})
    monkeypatch.chdir(repo)
    return repo


def diagnostics(path: Path | str = ".") -> list[str]:
    return [str(d) for d in validate_path(Path(path)).diagnostics]


def escapes(field: str, repo: Path) -> dict[str, str]:
    """Kind of escape -> the value that makes it, for ``field`` (symlinks made here)."""
    outside = repo.parent / "outside"
    target = {"script": outside / "x.yaml", "sources": outside / "docs", "seed": outside / "seed"}[field]
    (repo / "link").symlink_to(target)
    rel = {"script": "../outside/x.yaml", "sources": "../outside/docs/*.md", "seed": "../outside/seed"}[field]
    linked = {"script": "link", "sources": "link/*.md", "seed": "link"}[field]
    return {"dotdot": rel, "absolute": str(target) + ("/*.md" if field == "sources" else ""),
            "deep": "scripts/../../outside/" + rel.split("outside/", 1)[1], "symlink": linked}


INSIDE = {"script": "sub/../inner/ok.yaml", "sources": "inner/*.md", "seed": "inner"}


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("escape", ["dotdot", "absolute", "deep", "symlink"])
def test_a_path_outside_the_applied_folder_is_refused_at_its_node(repo, field, escape):
    value = escapes(field, repo)[escape]
    text, line, col = FIELDS[field]
    # Next to it, the same field inside the folder (through '..' and a symlink) is accepted.
    (repo / "inner").symlink_to(repo / ("scripts" if field != "sources" else "docs"))
    inside = text.replace("VALUE", INSIDE[field]).replace("{name: ", "{name: in-")
    write_tree(repo, {"res.yaml": text.replace("VALUE", value), "inside.yaml": inside})
    found = [d for d in diagnostics() if not d.startswith("agents.yaml")]  # (its Model is 'm')
    assert len(found) == 1, found
    where, message = found[0].split(": ", 1)
    assert where == f"res.yaml:{line}:{col}"
    assert message.startswith(f"{FIELD_NAME[field]} '{value}' ")
    assert "stays inside the applied folder" in message
    dotdot = "leads outside the applied folder through '..'"
    reason = {"dotdot": dotdot, "deep": dotdot, "absolute": "is an absolute path",
              "symlink": "resolves through a symlink to"}[escape]
    assert reason in message


def test_the_root_is_the_applied_folder_not_the_current_directory(repo):
    # A manifest in a subfolder may name a file elsewhere in the applied folder...
    write_tree(repo, {"sub/m.yaml": FIELDS["script"][0].replace("VALUE", "../scripts/ok.yaml")})
    assert diagnostics() == []
    # ...but when only the subfolder is applied, its sibling is outside.
    (found,) = diagnostics("sub")
    assert found.startswith("sub/m.yaml:6:11: spec.script '../scripts/ok.yaml' leads outside the applied "
                            "folder through '..'")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(AGENTFORM + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("validate hung: it opened a FIFO (a file it must not read)")


def test_a_symlinked_manifest_pointing_outside_is_refused_and_never_opened(repo):
    fifo = repo.parent / "outside" / "evil.yaml"
    os.mkfifo(fifo)
    (repo / "evil.yaml").symlink_to(fifo)
    proc = run(repo, "validate")
    assert proc.returncode == 1
    assert f"evil.yaml:1:1: this file is a symlink to {fifo}, outside the applied folder" in proc.stdout + proc.stderr


def test_an_ignore_file_pointing_outside_is_refused_and_never_opened(repo):
    fifo = repo.parent / "outside" / "ignore"
    os.mkfifo(fifo)
    (repo / ".agentformignore").symlink_to(fifo)
    proc = run(repo, "validate")
    assert proc.returncode == 1
    assert ".agentformignore:1:1: this file is a symlink to" in proc.stdout + proc.stderr


def test_a_fifo_in_the_folder_is_refused_and_never_opened(repo):
    os.mkfifo(repo / "pipe.yaml")
    proc = run(repo, "validate")
    assert proc.returncode == 1
    assert "pipe.yaml:1:1: not a regular file" in proc.stdout + proc.stderr


def test_a_script_that_is_a_fifo_outside_is_refused_without_opening_it(repo):
    os.mkfifo(repo.parent / "outside" / "s.yaml")
    write_tree(repo, {"m.yaml": FIELDS["script"][0].replace("VALUE", "../outside/s.yaml")})
    proc = run(repo, "validate")
    assert proc.returncode == 1
    assert "m.yaml:6:11: spec.script '../outside/s.yaml' leads outside the applied folder" in proc.stdout


def test_validate_cli_reports_the_located_error(repo):
    write_tree(repo, {"m.yaml": FIELDS["script"][0].replace("VALUE", "/etc/passwd")})
    proc = run(repo, "validate")
    assert proc.returncode == 1
    assert "m.yaml:6:11: spec.script '/etc/passwd' is an absolute path" in proc.stdout
    assert "root:" not in proc.stdout + proc.stderr  # nothing of /etc/passwd was read
