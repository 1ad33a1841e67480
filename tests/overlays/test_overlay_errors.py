"""Overlay errors: every one a located diagnostic in the overlay's file (or the base's), none a
traceback; paths confined to the root each file belongs to."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from textwrap import dedent

from test_overlay_load import BASE, CI, HEAD, SCRIPT, _ci_repo, _errors, _repo, _validate


def _overlay(body: str) -> str:
    return HEAD + "kind: Overlay\nmetadata: {name: app-ci}\n" + dedent(body)


def test_patch_errors_are_located_in_the_overlay_file(tmp_path, monkeypatch):
    root = _ci_repo(tmp_path, _overlay("""\
        spec:
          resources: [../../base]
          patches:
            - target: {kind: Modle}
              patch: {spec: {model: scripted}}
            - target: {kind: Agent, name: nobody}
              patch: {spec: {description: x}}
            - target: {kind: Model, name: fast}
              patch:
                spec: {retries: many}
            - target: {kind: Agent}
              patch:
                metadata: {name: renamed}
            - target: {kind: Agent}
              patch: {kind: Team}
            - target: {kind: Model, name: careful}
              patch: {spec: {model: scripted}}
        """))
    monkeypatch.chdir(root)
    result = _validate(Path("overlays/ci"))
    errors = _errors(result)
    file = "overlays/ci/agentform.yaml"
    assert f"{file}:7:22: patch target kind 'Modle' is not a kind (did you mean 'Model'?)" in errors
    assert f"{file}:9:15: patch target matches no Agent named 'nobody' among the overlay's resources" in errors
    assert any(e.startswith(f"{file}:13:25: Model 'fast' after this patch:") and "retries" in e for e in errors)
    assert any(e.startswith(f"{file}:16:20: a patch cannot change metadata.name") for e in errors)
    assert any(e.startswith(f"{file}:18:15: a patch sets 'spec' and 'metadata'") for e in errors)
    # a scripted model without a script: the whole object is wrong, located at the patch
    assert any(e.startswith(f"{file}:20:21: Model 'careful' after this patch:") and "script" in e for e in errors)
    assert len(errors) == 6, errors
    # a resource whose patch failed is left out; the others load
    assert sorted(m.name for m in result.manifests) == ["writer"]


def test_a_path_a_patch_writes_stays_in_the_overlays_folder(tmp_path, monkeypatch):
    root = _ci_repo(tmp_path, CI.replace("scripts/ci.yaml", "../../base/ci.yaml"), **{"base/ci.yaml": SCRIPT})
    monkeypatch.chdir(root)
    errors = _errors(_validate(Path("overlays/ci")))
    assert len(errors) == 1, errors     # the same place for both Models it targets: said once
    assert errors[0].startswith("overlays/ci/agentform.yaml:9:41: spec.script '../../base/ci.yaml' leads "
                                "outside the applied folder")
    assert "(overlays/ci)" in errors[0]


def test_a_base_keeps_its_own_folder_as_its_root(tmp_path, monkeypatch):
    # a base's Model naming a file of the overlay: outside the base, refused in the base's file
    files = {**BASE, "base/models.yaml": HEAD + "kind: Model\nmetadata: {name: fast}\n"
             "spec: {model: scripted, script: ../overlays/ci/scripts/ci.yaml}\n"}
    root = _repo(tmp_path, {**files, "overlays/ci/agentform.yaml": _overlay("""\
        spec:
          resources: [../../base]
        """), "overlays/ci/scripts/ci.yaml": SCRIPT})
    monkeypatch.chdir(root)
    errors = _errors(_validate(Path("overlays/ci")))
    assert len(errors) == 1 and errors[0].startswith("base/models.yaml:4:33: spec.script")
    assert "stays inside the applied folder (base)" in errors[0]


def test_resources_entries_are_checked(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "m.yaml").write_text(HEAD + "kind: Agent\nmetadata: {name: spy}\nspec: {model: fast}\n")
    root = _ci_repo(tmp_path, _overlay("""\
        spec:
          resources: [../../base, ../../missing, /etc, ../../../elsewhere, link, ../../base, .]
        """))
    os.symlink(outside, root / "overlays/ci/link")
    monkeypatch.chdir(root)
    result = _validate(Path("overlays/ci"))
    errors = "\n".join(_errors(result))
    assert "resources entry '../../missing': no such folder or file" in errors
    assert "resources entry '/etc' must be a path relative to the overlay's folder" in errors
    assert f"resources entry '../../../elsewhere' resolves to {outside}, outside the git work tree {root}" in errors
    assert f"resources entry 'link' resolves to {outside}, outside the git work tree" in errors
    assert "resources entry '../../base' is listed twice" in errors
    assert "resources entry '.' is an overlay that includes itself" in errors
    assert all(e.startswith("overlays/ci/agentform.yaml:5:") for e in _errors(result))
    assert "spy" not in {m.name for m in result.manifests}           # nothing outside was read


def test_an_overlay_outside_a_git_work_tree_loads_only_inside_its_folder(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    for rel, text in {**BASE, "overlays/ci/agentform.yaml": CI, "overlays/ci/scripts/ci.yaml": SCRIPT}.items():
        (plain / rel).parent.mkdir(parents=True, exist_ok=True)
        (plain / rel).write_text(text)
    assert subprocess.run(["git", "-C", str(plain), "rev-parse"], capture_output=True).returncode != 0
    monkeypatch.chdir(plain)
    errors = _errors(_validate(Path("overlays/ci")))
    assert len(errors) == 1 and "the overlay is in no git work tree" in errors[0]


def test_an_overlay_document_elsewhere_is_an_error(tmp_path, monkeypatch):
    root = _repo(tmp_path, {**BASE, "base/overlay.yaml": CI})
    monkeypatch.chdir(root)
    errors = _errors(_validate(Path("base")))
    assert errors == ["base/overlay.yaml:2:7: kind: Overlay is read only as the agentform.yaml of an overlay "
                      "folder, when that folder is validated, planned or applied by its own path "
                      "(engine/overlays.py)"]


def test_an_overlay_file_with_more_documents_or_a_bad_spec_is_an_error(tmp_path, monkeypatch):
    extra = CI + "---\n" + HEAD + "kind: Agent\nmetadata: {name: x}\nspec: {model: fast}\n"
    root = _repo(tmp_path, {**BASE, "overlays/a/agentform.yaml": extra,
                            "overlays/b/agentform.yaml": _overlay("spec: {resources: [], patchez: []}\n")})
    monkeypatch.chdir(root)
    assert "holds the Overlay document only" in _errors(_validate(Path("overlays/a")))[0]
    errors = _errors(_validate(Path("overlays/b")))
    assert any("patchez" in e and "did you mean 'patches'" in e for e in errors), errors
    assert any(e.startswith("overlays/b/agentform.yaml:4:19:") for e in errors), errors


def test_validate_plan_and_apply_accept_an_overlay_folder_through_the_cli(tmp_path):
    from project.helpers import agentform

    root = _ci_repo(tmp_path)
    home = tmp_path / "home"
    done = agentform("validate", "overlays/ci", home=home, cwd=root)
    assert done.returncode == 0 and "3 manifests" in done.stdout, done.stdout + done.stderr
    done = agentform("plan", "overlays/ci", home=home, cwd=root)
    assert done.returncode == 2 and 'app "app-ci"' in done.stdout, done.stdout + done.stderr
    done = agentform("apply", "overlays/ci", home=home, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    done = agentform("run", "agent/writer", "-i", "go", "--ci", home=home, cwd=root)
    assert done.returncode == 0 and "done" in done.stdout, done.stdout + done.stderr
    bad = root / "overlays/ci/agentform.yaml"
    bad.write_text(CI.replace("kind: Agent, name: writer", "kind: Agent, name: nobody"))
    done = agentform("validate", "overlays/ci", home=home, cwd=root)
    assert done.returncode == 1 and "overlays/ci/agentform.yaml:10:15: patch target matches no Agent" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_template_error_in_patched_instructions_is_located_in_the_overlay(tmp_path, monkeypatch):
    root = _ci_repo(tmp_path, _overlay("""\
        spec:
          resources: [../../base]
          patches:
            - target: {kind: Agent, name: writer}
              patch:
                spec:
                  instructions: |
                    You write for {{ agent.name }}.
                    Today: {{ now.date }} and {{ nobody.here }}.
        """))
    monkeypatch.chdir(root)
    errors = _errors(_validate(Path("overlays/ci")))
    assert len(errors) == 1, errors
    assert errors[0].startswith("overlays/ci/agentform.yaml:12:42:") and "nobody" in errors[0], errors


def test_an_overlay_file_that_links_outside_is_refused_unread(tmp_path, monkeypatch):
    outside = tmp_path / "outside.yaml"
    outside.write_text(CI)
    root = _repo(tmp_path, BASE)
    (root / "overlays/ci").mkdir(parents=True)
    os.symlink(outside, root / "overlays/ci/agentform.yaml")
    monkeypatch.chdir(root)
    result = _validate(Path("overlays/ci"))
    errors = _errors(result)
    assert len(errors) == 1 and "is a symlink to" in errors[0] and "it is not read" in errors[0], errors
    assert result.manifests == []
