"""`agentform init`: a manifest repo with an offline example that validates clean."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter
from ruamel.yaml import YAML

from agentform.api.cli.cmd_project import SCAFFOLD
from agentform.specs import AnyResource, Script

from .helpers import agentform


def test_init_scaffolds_a_repo(tmp_path: Path):
    repo = tmp_path / "team-repo"
    done = agentform("init", str(repo), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert written == sorted([*SCAFFOLD, ".gitignore"])
    assert (repo / ".gitignore").read_text() == ".agentform/\n"
    assert "team-repo" in (repo / "README.md").read_text()
    assert "agentform validate" in done.stdout


def test_init_files_parse_into_specs(tmp_path: Path):
    assert agentform("init", str(tmp_path), cwd=tmp_path).returncode == 0
    yaml = YAML(typ="safe")
    kinds = []
    for name in ("models.yaml", "agents.yaml", "team.yaml"):
        for doc in yaml.load_all((tmp_path / name).read_text()):
            kinds.append(TypeAdapter(AnyResource).validate_python(doc).kind)
    assert sorted(kinds) == ["Agent", "Agent", "Agent", "Model", "Team"]
    script = Script.model_validate(yaml.load((tmp_path / "scripts/demo.yaml").read_text()))
    assert set(script.agents) == {"lead", "researcher", "writer"}


def test_init_result_validates_clean(tmp_path: Path):
    from agentform.engine.validation import validate_path

    assert agentform("init", str(tmp_path), cwd=tmp_path).returncode == 0
    result = validate_path(tmp_path)
    assert [str(d) for d in result.diagnostics] == []
    assert len(result.manifests) == 5
    assert [Path(s).as_posix()[-17:] for s in result.skipped] == ["scripts/demo.yaml"]
    done = agentform("validate", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_init_in_the_current_folder_keeps_an_existing_gitignore(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("*.pyc")          # no final newline
    done = agentform("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n.agentform/\n"
    assert (tmp_path / "team.yaml").exists()
    # A second init refuses, so the ignore line is not added twice either.
    assert agentform("init", cwd=tmp_path).returncode == 1
    assert (tmp_path / ".gitignore").read_text().count(".agentform/") == 1


def test_init_refuses_to_overwrite_and_names_the_files(tmp_path: Path):
    (tmp_path / "team.yaml").write_text("# mine\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo.yaml").write_text("# mine too\n")
    done = agentform("init", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "refusing to overwrite" in done.stderr
    assert "team.yaml" in done.stderr and "demo.yaml" in done.stderr
    assert "models.yaml" not in done.stderr
    # Nothing written: the user's files are intact and no other file appeared.
    assert (tmp_path / "team.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["demo.yaml", "team.yaml"]


def test_the_scaffold_applies_and_runs_offline(tmp_path: Path):
    assert agentform("init", cwd=tmp_path).returncode == 0
    done = agentform("apply", cwd=tmp_path)                # state goes to ./.agentform
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / ".agentform").is_dir()              # the folder .gitignore names
    done = agentform("run", "team/demo", "-i", "Tell me about otters", "--ci", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Here is what the team found" in done.stdout


def test_init_into_a_file_is_a_usage_error(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("x")
    done = agentform("init", "notes.txt", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: notes.txt exists and is not a folder"
