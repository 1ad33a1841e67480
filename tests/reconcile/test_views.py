"""get, describe and graph on applied state; not-found; data output; import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("litellm", "mcp", "qdrant_client", "docker", "fastapi")


@pytest.fixture
def applied(cli):
    result = cli("apply")
    assert result.code == 0, result.err
    return cli


def test_get_lists_with_sync_and_health(applied):
    for word in ("agents", "agent", "Agent"):
        result = applied("get", word)
        assert result.code == 0, result.err
        lines = result.out.splitlines()
        assert lines[0].split() == ["NAME", "SYNC", "HEALTH", "REASON", "REVISION", "AGE"]
        assert [line.split()[:5] for line in lines[1:]] == [
            [name, "Synced", "Healthy", "Compiled", "1"] for name in ("lead", "researcher", "writer")]


def test_get_filters_by_label_and_all_namespaces(applied):
    cheap = applied("get", "agents", "-l", "tier=cheap", "-o", "json").json()
    assert [r["name"] for r in cheap] == ["researcher", "writer"]
    everywhere = applied("get", "agents", "-A")
    assert everywhere.out.splitlines()[0].split()[:2] == ["NAME", "NAMESPACE"]
    other = applied("get", "agents", "-n", "elsewhere")
    assert other.code == 0 and "No Agent resources found" in other.err


def test_get_one_as_json_and_yaml(applied):
    data = applied("get", "team", "research", "-o", "json").json()
    assert data["resource"] == "team.agentform.dev/default/research"
    assert (data["sync"], data["health"], data["generation"], data["revision"]) == ("Synced", "Healthy", 1, 1)
    assert data["conditions"][0] == {"type": "Ready", "status": "True", "reason": "Compiled",
                                     "message": "compiled: 3 agents, 1 teams, 0 pipelines, 1 models"}
    yaml_out = applied("get", "team", "research", "-o", "yaml")
    assert yaml_out.code == 0 and "sync: Synced" in yaml_out.out


def test_get_with_path_shows_out_of_sync_after_an_edit(applied, repo):
    (repo / "team.yaml").write_text((repo / "team.yaml").read_text().replace("mode: delegate", "mode: orchestrate"))
    data = applied("get", "teams", "--path", ".", "-o", "json").json()
    assert [(r["name"], r["sync"]) for r in data] == [("research", "OutOfSync")]
    assert applied("get", "agents", "--path", ".", "-o", "json").json()[0]["sync"] == "Synced"


def test_not_found_and_unknown_kind_exit_1(applied):
    missing = applied("get", "agent", "x")
    assert missing.code == 1
    assert missing.err.strip() == 'error: agent "x" not found in namespace "default"'
    assert applied("describe", "team/nope").code == 1
    assert applied("graph", "pipeline/nope").code == 1
    unknown = applied("get", "gizmos")
    assert unknown.code == 1 and "valid kinds: Secret, Model" in unknown.err


def test_describe_shows_conditions_generation_revision_and_source(applied):
    result = applied("describe", "agent/lead")
    assert result.code == 0, result.err
    out = result.out
    assert "Source:             agents.yaml:3" in out
    assert "Generation:         1 (observed 1)" in out
    assert "Last revision:      1 (" in out
    assert "Ready        True     Compiled" in out
    assert "instructions: You lead." in out
    model = applied("describe", "model", "fast")
    assert "script: 'pinned: 1 turns for 1 agents'" in model.out


def test_graph_prints_mermaid_for_team_and_pipeline(applied):
    team = applied("graph", "team/research")
    assert team.code == 0
    assert team.out.startswith("flowchart TD")
    assert '-->|"ask_researcher"|' in team.out and '==>|"transfer_to_writer"|' in team.out
    pipeline = applied("graph", "pipeline/newsroom").out
    assert "s_default_newsroom_research --> s_default_newsroom_draft" in pipeline
    assert "-.->|" in pipeline and "{{" in pipeline  # route as dotted edge, approval hexagon


def test_stored_graph_reads_back_as_graph(applied, store_url):
    from agentform.engine.graph import Graph
    from agentform.engine.store import open_store
    from agentform.specs import ResourceKey

    store = open_store(store_url)
    try:
        data = store.get_graph(ResourceKey("Pipeline", "default", "newsroom"))
    finally:
        store.close()
    graph = Graph.model_validate(data)
    assert graph.pipelines["default/newsroom"].order == ["research", "draft", "review", "ship"]
    assert graph.models["default/fast"].script == {"agents": {"lead": [{"content": "Final answer"}]}}


def test_plan_and_apply_import_nothing_heavy(cli):
    code = (
        "import sys\n"
        "from agentform.api.cli import main\n"
        "for argv in (['plan'], ['apply'], ['get', 'agents']):\n"
        "    try:\n"
        f"        main(['--home', {str(cli.home)!r}, '--store', {cli.store_url!r}] + argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=cli.cwd, capture_output=True,
                          text=True, timeout=120, env=cli.env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
