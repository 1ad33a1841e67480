"""Overlays: a folder whose agentform.yaml is kind: Overlay loads its resources and patches them.

Real files in a real git work tree (``git init``); validate, plan and apply go through the
same functions the CLI uses, and apply writes to both stores.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

HEAD = "apiVersion: agentform.dev/v1alpha1\n"

BASE = {
    "base/models.yaml": HEAD + dedent("""\
        kind: Model
        metadata: {name: fast}
        spec: {model: openai/gpt-4o-mini, params: {temperature: 0.2}}
        ---
        """) + HEAD + dedent("""\
        kind: Model
        metadata: {name: careful}
        spec: {model: anthropic/claude-sonnet-4-5}
        """),
    "base/agents.yaml": HEAD + dedent("""\
        kind: Agent
        metadata: {name: writer}
        spec: {model: fast, instructions: You write.}
        """),
}

CI = HEAD + dedent("""\
    kind: Overlay
    metadata: {name: app-ci}
    spec:
      resources: [../../base]
      patches:
        - target: {kind: Model}
          patch:
            spec: {model: scripted, script: scripts/ci.yaml, params: null}
        - target: {kind: Agent, name: writer}
          patch:
            metadata: {labels: {variant: ci}}
            spec: {description: the CI writer}
    """)

SCRIPT = "agents:\n  writer:\n    - content: done\n"


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _ci_repo(tmp_path: Path, overlay: str = CI, **extra: str) -> Path:
    return _repo(tmp_path, {**BASE, "overlays/ci/agentform.yaml": overlay,
                            "overlays/ci/scripts/ci.yaml": SCRIPT, **extra})


def _validate(path: Path):
    from agentform.engine.validation import validate_path

    return validate_path(path)


def _errors(result) -> list[str]:
    return [str(d) for d in result.diagnostics]


def test_an_overlay_loads_only_its_resources_with_the_patches_applied(tmp_path, monkeypatch):
    stray = HEAD + "kind: Agent\nmetadata: {name: stray}\nspec: {model: fast}\n"
    root = _ci_repo(tmp_path, **{"overlays/ci/stray.yaml": stray})
    monkeypatch.chdir(root)
    result = _validate(Path("overlays/ci"))
    assert _errors(result) == []
    by_name = {m.name: m for m in result.manifests}
    assert sorted(by_name) == ["careful", "fast", "writer"]       # not the stray file beside it
    for model in ("fast", "careful"):
        spec = by_name[model].resource.spec
        assert (spec.model, spec.script, spec.params) == ("scripted", "scripts/ci.yaml", {})
    writer = by_name["writer"].resource
    assert writer.metadata.labels == {"variant": "ci"} and writer.spec.description == "the CI writer"
    assert writer.spec.instructions == "You write."                 # what the patch left alone
    # the patched script path is the overlay's: resolved and pinned from there
    from agentform.engine.desired import from_manifest_set

    desired = {d.key.name: d for d in from_manifest_set(result)}
    assert desired["fast"].resolved["script"] == {"agents": {"writer": [{"content": "done"}]}}
    # a value from the base is located in the base, one from a patch in the overlay
    assert str(by_name["writer"].locate("spec", "instructions")) == "base/agents.yaml:4:35"
    assert str(by_name["writer"].locate("spec", "description")) == "overlays/ci/agentform.yaml:13:29"


def test_a_recursive_walk_skips_overlay_folders(tmp_path, monkeypatch):
    root = _ci_repo(tmp_path)
    monkeypatch.chdir(root)
    result = _validate(Path("."))
    assert _errors(result) == []
    assert sorted(m.name for m in result.manifests) == ["careful", "fast", "writer"]
    assert all(m.resource.spec.model != "scripted" for m in result.manifests if m.kind == "Model")
    assert any(s.startswith("overlays/ci/ (an overlay folder") for s in result.skipped)


def test_apply_records_the_overlays_name_as_the_app_and_plan_shows_a_patch_change(store, tmp_path, monkeypatch):
    from agentform.engine.api import Engine
    from agentform.engine.reconcile import apply_path

    root = _ci_repo(tmp_path)
    monkeypatch.chdir(root)
    result = apply_path(store, Path("overlays/ci"), home=tmp_path / "home")
    assert result.exit_code == 0, result.error_lines()
    assert sorted(k.name for k in store.inventory("app-ci")) == ["careful", "fast", "writer"]
    applied = store.get_resource(next(k for k in store.inventory("app-ci") if k.name == "fast"))
    assert applied.spec["spec"]["model"] == "scripted"

    # change only the patch: the desired hash changes, so plan shows an update of the patched resources
    (root / "overlays/ci/agentform.yaml").write_text(CI.replace("the CI writer", "the nightly writer"))
    engine = Engine(home=tmp_path / "home", store=store.url)
    try:
        plan, _ = engine.plan(Path("overlays/ci"))
    finally:
        engine.close()
    assert plan.app == "app-ci"
    changes = {(c.action, c.key.name) for c in plan.changes if c.action != "noop"}
    assert changes == {("update", "writer")}


def test_nested_overlays_apply_inner_patches_first_and_watched_roots_lists_every_folder(tmp_path, monkeypatch):
    nightly = HEAD + dedent("""\
        kind: Overlay
        metadata: {name: app-nightly}
        spec:
          resources: [../ci, extra.yaml]
          patches:
            - target: {kind: Agent, name: writer}
              patch: {spec: {description: nightly}}
        """)
    extra = HEAD + "kind: Agent\nmetadata: {name: checker}\nspec: {model: careful}\n"
    root = _ci_repo(tmp_path, **{"overlays/nightly/agentform.yaml": nightly, "overlays/nightly/extra.yaml": extra})
    monkeypatch.chdir(root)
    result = _validate(Path("overlays/nightly"))
    assert _errors(result) == []
    by_name = {m.name: m.resource for m in result.manifests}
    assert sorted(by_name) == ["careful", "checker", "fast", "writer"]
    assert by_name["writer"].spec.description == "nightly"            # the outer patch wins
    assert by_name["writer"].metadata.labels == {"variant": "ci"}     # the inner one still applies
    assert by_name["fast"].spec.model == "scripted"

    from agentform.engine.overlays import watched_roots

    assert watched_roots("overlays/nightly") == [root / "overlays/nightly", root / "overlays/ci", root / "base"]
    assert watched_roots("base") == [root / "base"]


def test_merge_patches_merge_mappings_remove_nulls_and_merge_named_lists():
    from agentform.engine.overlay_patch import merge

    base = {"spec": {"a": 1, "b": {"c": 2, "d": 3}, "tags": ["x", "y"],
                     "stages": [{"name": "draft", "agent": "w"}, {"name": "review", "agent": "r", "needs": ["draft"]}]}}
    patch = {"spec": {"a": None, "b": {"c": 20}, "tags": ["z"],
                      "stages": [{"name": "review", "agent": "r2"}, {"name": "draft", "$patch": "delete"},
                                 {"name": "publish", "agent": "p"}]}}
    assert merge(base, patch) == {"spec": {"b": {"c": 20, "d": 3}, "tags": ["z"], "stages": [
        {"name": "review", "agent": "r2", "needs": ["draft"]}, {"name": "publish", "agent": "p"}]}}
    assert base["spec"]["a"] == 1   # the base is not changed


def test_the_default_app_is_the_overlays_name(tmp_path):
    from agentform.engine.reconcile import default_app

    root = _ci_repo(tmp_path)
    assert default_app(root / "overlays/ci") == "app-ci"
    assert default_app(root / "base") == "base"


@pytest.mark.parametrize("name", ["agentform.yaml", "agentform.yml"])
def test_both_file_names_make_an_overlay(tmp_path, name, monkeypatch):
    root = _repo(tmp_path, {**BASE, f"overlays/ci/{name}": CI, "overlays/ci/scripts/ci.yaml": SCRIPT})
    monkeypatch.chdir(root)
    assert len(_validate(Path("overlays/ci")).manifests) == 3


def test_watched_roots_leaves_out_what_the_load_refuses(tmp_path):
    from agentform.engine.overlays import watched_roots

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    overlay = CI.replace("resources: [../../base]", f"resources: [../../base, ../../../elsewhere, {outside}, nope]")
    root = _ci_repo(tmp_path, overlay)
    assert watched_roots(root / "overlays/ci") == [root / "overlays/ci", root / "base"]
