"""schemas/: generated from the specs, committed fresh, and every example validates against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from agentform.engine import schemagen
from agentform.specs import KINDS

from .helpers import EXAMPLES, ROOT, agentform

SCHEMAS = ROOT / "schemas"


def _documents(path: Path) -> list[dict]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text("utf-8")) if doc is not None]


def _example_files() -> tuple[list[Path], list[Path]]:
    """(manifest files, script files) under examples/, told apart as CONTRACT section 7 says."""
    manifests, scripts = [], []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        is_manifest = any(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in _documents(path))
        (manifests if is_manifest else scripts).append(path)
    return manifests, scripts


def test_committed_schemas_are_fresh():
    stale = schemagen.stale_schemas(SCHEMAS)
    assert not stale, f"schemas/ is stale ({', '.join(stale)}): run `make schemas` and commit"
    generated = {p.name for p in SCHEMAS.glob("*.json")}
    assert generated == set(schemagen.all_schemas()), "schemas/ holds files the generator does not make"


def test_one_file_per_kind_plus_manifest_and_script():
    expected = {f"{kind.lower()}.json" for kind in KINDS} | {"manifest.json", "script.json", "overlay.json"}
    assert set(schemagen.all_schemas()) == expected


def test_schemas_are_valid_json_schema():
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == schemagen.DIALECT


def test_every_example_manifest_matches_the_manifest_schema():
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "manifest.json").read_text()))
    manifests, _ = _example_files()
    assert len(manifests) >= 10
    overlay = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "overlay.json").read_text()))
    for path in manifests:
        for doc in _documents(path):
            if doc["kind"] == "Overlay":   # an overlay folder's agentform.yaml is not a resource
                assert not [e.message for e in overlay.iter_errors(doc)], path
                continue
            errors = [e.message for e in validator.iter_errors(doc)]
            assert not errors, f"{path.relative_to(ROOT)}: {errors}"
            kind_schema = json.loads((SCHEMAS / f"{doc['kind'].lower()}.json").read_text())
            jsonschema.validate(doc, kind_schema, cls=jsonschema.Draft202012Validator)


def test_every_example_script_matches_the_script_schema():
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "script.json").read_text()))
    _, scripts = _example_files()
    assert {p.parent.parent.name for p in scripts} == {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    for path in scripts:
        for doc in _documents(path):
            assert not [e.message for e in validator.iter_errors(doc)], path


@pytest.mark.parametrize(
    "broken, where",
    [
        ({"spec": {"model": "m", "instructons": "typo"}}, "instructons"),
        ({"kind": "Agnet"}, "Agnet"),
        ({"metadata": {"name": "Not_DNS"}}, "Not_DNS"),
        ({"spec": {"model": "m", "budget": {"timeout": "five minutes"}}}, "five minutes"),
    ],
    ids=["unknown-field", "unknown-kind", "bad-name", "bad-duration"],
)
def test_manifest_schema_rejects_broken_manifests(broken, where):
    doc = {"apiVersion": "agentform.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "a"},
           "spec": {"model": "m"}}
    doc.update(broken)
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "manifest.json").read_text()))
    errors = list(validator.iter_errors(doc))
    assert errors, f"the schema accepted {broken}"
    assert any(where in json.dumps(e.instance) or where in e.message for e in errors)


def test_schema_command_prints_the_committed_files():
    done = agentform("schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (SCHEMAS / "manifest.json").read_text()
    done = agentform("schema", "teams")
    assert done.stdout == (SCHEMAS / "team.json").read_text()


def test_schema_command_writes_and_checks_a_folder(tmp_path: Path):
    out = tmp_path / "schemas"
    assert agentform("schema", "--out", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(schemagen.all_schemas())
    assert agentform("schema", "--check", "--out", str(out)).returncode == 0
    (out / "agent.json").write_text("{}\n")
    done = agentform("schema", "--check", "--out", str(out))
    assert done.returncode == 1
    assert "agent.json: stale; run `make schemas`" in done.stderr


def test_schema_command_names_the_valid_kinds():
    done = agentform("schema", "agnet")
    assert done.returncode == 1
    assert "unknown kind 'agnet'" in done.stderr and "Agent" in done.stderr
    assert "Traceback" not in done.stderr
