"""The loader: which files are manifests, documents, locations, scripts, clean trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from validate_helpers import HEADER, write_tree

from agentform.engine.errors import ManifestError
from agentform.engine.loader import Location, load_manifests, load_script
from agentform.engine.validation import validate_path

MODEL = HEADER + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n"


def names(ms) -> list[str]:
    return sorted(m.name for m in ms.manifests)


def test_discovery_skips_hidden_state_and_ignored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = lambda n: MODEL.replace("fast", n)  # noqa: E731
    write_tree(tmp_path, {
        "a.yaml": model("a"),
        "deep/er/b.yml": model("b"),
        ".hidden/c.yaml": model("c"),
        ".agentform/d.yaml": model("d"),
        "vendor/e.yaml": model("e"),
        "f.yaml.txt": model("f"),
        ".g.yaml": model("g"),
        "drafts/h.yaml": model("h"),
        "drafts/keep.yaml": model("keep"),
        ".agentformignore": "vendor/\ndrafts/*\n!drafts/keep.yaml\n",
    })
    ms = load_manifests(Path("."))
    assert ms.diagnostics == []
    assert names(ms) == ["a", "b", "keep"]


def test_non_manifest_yaml_is_skipped_but_broken_yaml_is_an_error(tree, tmp_path):
    out = tree({
        "docker-compose.yml": "services:\n  web: {image: nginx}\n",
        "k8s.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        "broken.yaml": "a: [1\n",
        "m.yaml": MODEL,
    })
    assert out == ["broken.yaml:2:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)"]
    ms = load_manifests(tmp_path)
    assert sorted(Path(s).name for s in ms.skipped) == ["docker-compose.yml", "k8s.yaml"]
    assert [Path(f).name for f in ms.failed_files] == ["broken.yaml"]


def test_several_documents_and_locate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, {"m.yaml": "---\n" + MODEL + "---\n" + MODEL.replace("fast", "slow") + "---\n"})
    ms = load_manifests(Path("."))
    assert ms.ok and names(ms) == ["fast", "slow"]
    slow = ms.get("Model", "default", "slow")
    assert slow is not None and slow.doc_index == 1
    assert slow.locate("spec", "model") == Location("m.yaml", 10, 15)
    assert slow.locate("metadata", "name", key=True) == Location("m.yaml", 9, 12)
    assert slow.locate("spec", "nothing", "here") == slow.locate("spec")  # nearest parent
    assert slow.base_dir == tmp_path.resolve() or slow.base_dir == tmp_path
    assert slow.raw["spec"] == {"model": "openai/gpt-4o-mini"}


def test_core_schema_scalars(tmp_path):
    from agentform.engine.yamlsafe import parse_yaml

    text = "a: yes\nb: 0o17\nc: 0x1F\nd: 1e3\ne: ~\nf: 'true'\ng: !!str 12\nh: 2024-01-01\ni: .inf\n"
    data = parse_yaml(text, "f.yaml").documents[0].data
    assert data == {"a": "yes", "b": 15, "c": 31, "d": 1000.0, "e": None, "f": "true", "g": "12",
                    "h": "2024-01-01", "i": float("inf")}


def test_load_script(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("agents:\n  lead:\n    - toolCalls: [{name: ask_x, arguments: {task: go}}]\n    - content: done\n")
    script, data = load_script(path)
    assert script.agents["lead"][1].content == "done"
    assert data["agents"]["lead"][0]["toolCalls"][0]["name"] == "ask_x"
    path.write_text("agents:\n  lead:\n    - contnt: done\n")
    with pytest.raises(ManifestError) as info:
        load_script(path, display="s.yaml")
    assert [str(d) for d in info.value.diagnostics] == [
        "s.yaml:3:7: unknown field 'contnt' in agents.lead[0] (did you mean 'content'?)"
    ]


CLEAN = {
    "all.yaml": "\n---\n".join([
        HEADER + "kind: Secret\nmetadata: {name: key}\nspec: {fromEnv: KEY}",
        HEADER + "kind: Model\nmetadata: {name: fast}\nspec:\n  model: scripted\n  script: scripts/s.yaml\n"
        "  apiKey: {secretRef: key}\n  fallbacks: [slow]",
        HEADER + "kind: Model\nmetadata: {name: slow}\nspec: {model: openai/gpt-4o, pricing: {inputPerMTok: 1, outputPerMTok: 2}}",
        HEADER + "kind: ToolServer\nmetadata: {name: git}\nspec:\n  command: [uvx, mcp-server-git, '--run', '{{ run.id }}']\n"
        "  env: {GIT_TOKEN: {secretRef: key, format: 'Bearer {}'}}\n  timeout: 1m30s",
        HEADER + "kind: Workspace\nmetadata: {name: room}\nspec: {limits: {memory: 512Mi, cpus: 1.5}}",
        HEADER + "kind: Workspace\nmetadata: {name: desk}\nspec: {backend: docker, image: 'python:3.12-slim'}",
        HEADER + "kind: KnowledgeBase\nmetadata: {name: docs}\nspec: {sources: [{path: 'docs/*.md'}]}",
        HEADER + "kind: Agent\nmetadata: {name: lead}\nspec:\n  model: fast\n  instructions: |\n"
        "    You are {{ agent.name }}.\n    {% if now %}Today is {{ now.date }}{% endif %}\n"
        "  tools: [{toolServer: git, allow: [git_log]}, {builtin: workspace}, {knowledge: docs}]\n"
        "  output: {schema: {type: object, properties: {sources: {type: array}}}}",
        HEADER + "kind: Agent\nmetadata: {name: per-source-writer}\nspec: {model: fast}",
        HEADER + "kind: Agent\nmetadata: {name: billing}\nspec: {model: fast}",
        HEADER + "kind: Team\nmetadata: {name: crew}\nspec:\n  manager: lead\n  members:\n"
        "    - agent: per-source-writer\n    - {agent: billing, mode: delegate}\n  workspace: room",
        HEADER + "kind: Team\nmetadata: {name: outer}\nspec: {manager: lead, members: [{team: crew}]}",
        HEADER + "kind: Pipeline\nmetadata: {name: flow}\nspec:\n  params:\n    topic: {type: string}\n"
        "  workspace: desk\n  stages:\n"
        "    - {name: research, team: crew, input: 'Research {{ params.topic }}'}\n"
        "    - name: per-source\n      agent: per-source-writer\n      needs: [research]\n"
        "      forEach: '{{ stages.research.output.sources }}'\n      input: '{{ item }} of {{ params.topic }}'\n"
        "    - name: draft\n      agent: lead\n      needs: [per-source]\n      input: \"{{ stages['per-source'].output }}\"\n"
        "    - name: review\n      agent: lead\n      needs: [draft]\n      maxVisits: 3\n"
        "      routes: [{when: \"'REVISE' in output\", goto: draft}]\n"
        "    - {name: ship, needs: [review], approval: {message: 'Publish {{ params.topic }}?'}}\n"
        "    - name: status\n      needs: [ship]\n      when: '{{ always() and stages.ship.output.approved }}'\n"
        "      tool: {toolServer: git, name: git_status, arguments: {repo_path: '{{ workspace.path }}'}}\n"
        "  output: '{{ stages.review.output }} ({{ run.id }})'",
    ]),
    "scripts/s.yaml": "agents:\n  lead:\n    - content: ok\n  per-source[2]/per-source-writer:\n    - content: x\n",
}


def test_a_clean_tree_of_every_kind(tree):
    assert tree(CLEAN) == []


def test_validate_path_result(tmp_path):
    write_tree(tmp_path, CLEAN)
    ms = validate_path(tmp_path)
    assert ms.ok and len(ms.manifests) == 13 and ms.manifest_files == 1
    assert ms.skipped and ms.skipped[0].endswith("s.yaml")


EXAMPLES = sorted(p for p in (Path(__file__).parents[2] / "examples").glob("*") if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate_clean(example):
    ms = validate_path(example)
    assert [str(d) for d in ms.diagnostics] == []
    assert ms.manifests
