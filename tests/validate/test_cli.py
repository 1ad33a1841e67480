"""`agentform validate` as a real process: exit codes, text, GitHub annotations, JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from validate_helpers import AGENTFORM, HEADER, write_tree

GOOD = {
    "models.yaml": HEADER + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n",
    "agents/helper.yml": HEADER + "kind: Agent\nmetadata: {name: helper}\nspec: {model: fast}\n",
    "scripts/turns.yaml": "agents:\n  helper:\n    - content: hi\n",
}
BAD = {
    "a.yaml": HEADER + "kind: Agent\nmetadata: {name: helper}\nspec:\n  modle: fast\n",
    "b.yaml": HEADER + "kind: Agent\nmetadata: {name: other}\nspec: {model: missing}\n",
}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(AGENTFORM + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_clean_tree_exits_0_with_summary(tmp_path):
    write_tree(tmp_path, GOOD)
    proc = run(tmp_path, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "ok: 2 manifests in 2 files\n"


def test_verbose_lists_skipped_yaml(tmp_path):
    write_tree(tmp_path, GOOD)
    proc = run(tmp_path, "validate", ".", "-v")
    assert proc.returncode == 0
    assert "skipped (not a manifest file): scripts/turns.yaml" in proc.stdout.splitlines()


def test_errors_sorted_with_summary_and_exit_1(tmp_path):
    write_tree(tmp_path, BAD)
    proc = run(tmp_path, "validate", ".")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "a.yaml:5:3: unknown field 'modle' in Agent spec (did you mean 'model'?)",
        "b.yaml:4:15: unknown Model 'missing' in namespace 'default'",
        "2 errors in 2 files (2 manifests checked)",
    ]
    assert proc.stderr == ""


def test_paths_are_shown_relative_to_the_current_directory(tmp_path):
    write_tree(tmp_path / "repo", BAD)
    proc = run(tmp_path, "validate", "repo")
    assert proc.stdout.splitlines()[0].startswith("repo/a.yaml:5:3: ")


def test_github_format(tmp_path):
    write_tree(tmp_path, BAD)
    proc = run(tmp_path, "validate", "--format", "github")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "::error file=a.yaml,line=5,col=3::unknown field 'modle' in Agent spec (did you mean 'model'?)"
    assert lines[-1] == "2 errors in 2 files (2 manifests checked)"


def test_json_output(tmp_path):
    write_tree(tmp_path, BAD)
    proc = run(tmp_path, "validate", "-o", "json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["manifests"] == 1
    assert data["diagnostics"][1] == {
        "file": "b.yaml", "line": 4, "col": 15, "severity": "error", "code": "",
        "message": "unknown Model 'missing' in namespace 'default'",
    }


def test_json_output_clean(tmp_path):
    write_tree(tmp_path, GOOD)
    data = json.loads(run(tmp_path, "validate", "-o", "json").stdout)
    assert data == {"ok": True, "diagnostics": [], "manifests": 2, "files": 2, "skipped": ["scripts/turns.yaml"]}


@pytest.mark.parametrize("args", [["--format", "xml"], ["-o", "yaml"], ["--max-file-size", "huge"], ["--nope"]])
def test_usage_errors_exit_1_without_traceback(tmp_path, args):
    write_tree(tmp_path, GOOD)
    proc = run(tmp_path, "validate", *args)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip()


def test_missing_path(tmp_path):
    proc = run(tmp_path, "validate", "nowhere")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "nowhere: no such file or directory"


def test_max_file_size_option(tmp_path):
    write_tree(tmp_path, GOOD)
    proc = run(tmp_path, "validate", "--max-file-size", "64")
    assert proc.returncode == 1
    assert "agents/helper.yml:1:1: file too large (" in proc.stdout
    assert run(tmp_path, "validate", "--max-file-size", "2Ki").returncode == 0


def test_single_file_argument(tmp_path):
    write_tree(tmp_path, GOOD)
    proc = run(tmp_path, "validate", "models.yaml")
    assert (proc.returncode, proc.stdout) == (0, "ok: 1 manifest in 1 file\n")


def test_validate_imports_no_heavy_module(tmp_path):
    write_tree(tmp_path, GOOD)
    code = (
        "import sys\nfrom agentform.api import cli\n"
        "try:\n    cli.main(['validate', '.'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litellm', 'mcp', 'qdrant_client', 'docker', 'fastapi') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    python = str(Path(AGENTFORM[0]).with_name("python"))
    proc = subprocess.run([python, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "HEAVY []", proc.stdout + proc.stderr
