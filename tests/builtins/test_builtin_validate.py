"""Validation of built-in tool entries: located errors for what cannot run, never a traceback."""

from __future__ import annotations

from pathlib import Path

HEAD = "apiVersion: agentform.dev/v1alpha1\n"
MODEL = HEAD + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml}\n---\n"


def _errors(tmp_path: Path, monkeypatch, tools: str, script: str = "agents: {}\n") -> list[str]:
    from agentform.engine.validation import validate_path

    (tmp_path / "s.yaml").write_text(script)
    (tmp_path / "a.yaml").write_text(MODEL + HEAD + "kind: Agent\nmetadata: {name: a}\nspec:\n  model: m\n"
                                     "  tools:\n" + tools)
    monkeypatch.chdir(tmp_path)
    return [str(d) for d in validate_path(Path(".")).diagnostics]


def test_every_builtin_validates_as_one_line(tmp_path, monkeypatch):
    tools = ("    - builtin: think\n    - builtin: todo\n    - builtin: memory\n"
             "    - {builtin: fetch, hosts: [api.example.com, '*.docs.example.com', '127.0.0.1:8080', '[::1]']}\n")
    script = ("agents:\n  a:\n    - toolCalls:\n        - {name: think, arguments: {thought: x}}\n"
              "        - {name: todo_write, arguments: {todos: []}}\n        - {name: memory_set, arguments: {}}\n"
              "        - {name: fetch, arguments: {url: 'https://api.example.com'}}\n    - content: ok\n")
    assert _errors(tmp_path, monkeypatch, tools, script) == []


def test_fetch_needs_hosts_and_only_fetch_takes_them(tmp_path, monkeypatch):
    errors = _errors(tmp_path, monkeypatch, "    - builtin: fetch\n    - {builtin: memory, hosts: [a.example]}\n")
    assert len(errors) == 2, errors
    assert all("{builtin: fetch} needs 'hosts'" in e for e in errors)
    assert errors[0].startswith("a.yaml:12:7:") and errors[1].startswith("a.yaml:13:7:")


def test_a_bad_host_entry_is_located(tmp_path, monkeypatch):
    errors = _errors(tmp_path, monkeypatch, "    - builtin: fetch\n      hosts:\n        - ok.example\n"
                                            "        - https://example.com/x\n")
    assert len(errors) == 1, errors
    assert errors[0].startswith("a.yaml:15:11:") and "no scheme, user or path" in errors[0]


def test_an_unknown_builtin_and_an_unknown_tool_in_a_script_are_errors(tmp_path, monkeypatch):
    errors = _errors(tmp_path, monkeypatch, "    - builtin: memroy\n")
    assert len(errors) == 1 and errors[0].startswith("a.yaml:12:16:") and "memory" in errors[0], errors
    script = "agents:\n  a:\n    - toolCalls: [{name: memory_forget, arguments: {}}]\n"
    errors = _errors(tmp_path, monkeypatch, "    - builtin: memory\n", script)
    assert len(errors) == 1 and "memory_forget" in errors[0], errors


def test_graph_draws_each_agents_builtins(store, tmp_path):
    from runtime.helpers import agent, apply, project

    from agentform.engine.api import Engine
    from agentform.specs import ResourceKey

    root = project(tmp_path / "m", {"agents": {}}, [agent("a", tools=[
        {"builtin": "memory"}, {"builtin": "fetch", "hosts": ["api.example.com", "127.0.0.1:8080"]}])])
    apply(store, root, tmp_path)
    with Engine(home=tmp_path, store=store) as engine:
        lines = engine.graph_mermaid(ResourceKey("Agent", "default", "a")).splitlines()
    assert '  ts_builtin_memory[/"built-in memory"/]' in lines
    assert '  ts_builtin_fetch[/"built-in fetch"/]' in lines
    assert '  a_default_a -.-|"hosts api.example.com, 127.0.0.1:8080"| ts_builtin_fetch' in lines
    assert "  a_default_a -.- ts_builtin_memory" in lines
