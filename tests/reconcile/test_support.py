"""Secrets (check, resolve, seal, redact), prices without litellm, git info in revisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentform.engine import secrets
from agentform.engine.errors import RunError
from agentform.engine.gitinfo import git_info
from agentform.engine.prices import price_of, table_path
from agentform.engine.store import open_store
from agentform.specs import SecretRef
from agentform.specs.model import ModelSpec


def test_env_and_file_sources_are_checked_and_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("AF_TOKEN", "tok-12345")
    env = secrets.SecretSource("default", "a", from_env="AF_TOKEN")
    assert secrets.check_source(env, home=tmp_path).ok
    assert secrets.resolve(env, home=tmp_path) == "tok-12345"
    missing = secrets.SecretSource("default", "b", from_file=str(tmp_path / "nope"))
    check = secrets.check_source(missing, home=tmp_path)
    assert (check.ok, check.reason) == (False, "SourceNotFound")
    with pytest.raises(RunError, match="cannot read"):
        secrets.resolve(missing, home=tmp_path)
    (tmp_path / "tok").write_text("file-secret\n")
    assert secrets.resolve(secrets.SecretSource("default", "c", from_file=str(tmp_path / "tok")),
                           home=tmp_path) == "file-secret"


def test_sealed_values_are_bound_to_their_secret_and_need_the_key(tmp_path):
    sealed_source = secrets.SecretSource("default", "gh", sealed="afs1:" + "A" * 80)
    assert secrets.check_source(sealed_source, home=tmp_path).reason == "KeyNotFound"
    public = secrets.generate_keys(tmp_path)
    value = secrets.seal("hunter2-value", public.read_bytes(), namespace="default", name="gh")
    assert value.startswith("afs2:") and "hunter2" not in value
    good = secrets.SecretSource("default", "gh", sealed=value)
    assert secrets.check_source(good, home=tmp_path).ok
    assert secrets.resolve(good, home=tmp_path) == "hunter2-value"
    moved = secrets.SecretSource("default", "other", sealed=value)
    check = secrets.check_source(moved, home=tmp_path)
    assert (check.ok, check.reason) == (False, "DecryptFailed") and "hunter2" not in check.message
    assert secrets.check_source(secrets.SecretSource("default", "gh", sealed="afs1:!!"),
                                home=tmp_path).reason == "SealedMalformed"


def test_resolve_ref_applies_the_format_and_redact_hides_values(tmp_path, monkeypatch):
    monkeypatch.setenv("AF_MCP", "abc-secret")
    ref = SecretRef.model_validate({"secretRef": "mcp-token", "format": "Bearer {}"})
    header = secrets.resolve_ref(ref, namespace="default", secrets={"default/mcp-token": {"fromEnv": "AF_MCP"}},
                                 home=tmp_path)
    assert header == "Bearer abc-secret"
    with pytest.raises(RunError, match="not part of this revision"):
        secrets.resolve_ref(ref, namespace="other", secrets={}, home=tmp_path)
    assert secrets.redact("sent Bearer abc-secret to abc-secret", [header, "abc-secret"]) == "sent *** to ***"


def test_prices_come_from_pricing_then_litellms_table_without_importing_it():
    assert price_of(ModelSpec(model="x/y", pricing={"inputPerMTok": 1, "outputPerMTok": 2})).source == "pricing"
    assert price_of(ModelSpec(model="scripted", script="s.yaml")).to_dict()["inputPerMTok"] == 0.0
    assert table_path() is not None
    code = ("import sys\nfrom agentform.engine.prices import price_of\nfrom agentform.specs.model import ModelSpec\n"
            "p = price_of(ModelSpec(model='openai/gpt-4o-mini'))\n"
            "print(p.source, round(p.input_per_m_tok, 4), round(p.output_per_m_tok, 4), 'litellm' in sys.modules)\n"
            "print(price_of(ModelSpec(model='nowhere/unknown-model')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split("\n")
    assert out[0] == "litellm 0.15 0.6 False"
    assert out[1] == "None"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_revision_records_git_commit_and_dirty_flag(cli, repo, store_url):
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "manifests")
    head = git(repo, "rev-parse", "HEAD")
    assert git_info(repo).commit == head and not git_info(repo).dirty
    assert cli("apply").code == 0
    (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace("You lead.", "You lead well."))
    assert cli("apply").code == 0
    store = open_store(store_url)
    try:
        second, first = store.list_revisions()
    finally:
        store.close()
    assert (first.git_commit, first.git_dirty) == (head, False)
    assert (second.git_commit, second.git_dirty) == (head, True)
    assert git_info(Path("/")).commit is None
