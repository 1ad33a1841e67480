"""Tool stages: a pipeline calls an MCP tool directly, on real stdio servers.

The happy paths use the reference server ``mcp-server-time`` (PyPI); the error paths use
the runtime tests' own calc server (``tests/runtime/mcp_calc.py``: a tool that raises,
one that sleeps, one that kills its process).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .helpers import HEADER, apply, run, stream, write_project

CALC = Path(__file__).resolve().parents[1] / "runtime" / "mcp_calc.py"


def toolserver(name: str, command: list[str], **spec) -> str:
    body = {"transport": "stdio", "command": command, **spec}
    return HEADER + f"kind: ToolServer\nmetadata: {{name: {name}}}\nspec: {json.dumps(body)}\n"


TIME = toolserver("time", [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"])


def calc(**spec) -> str:
    return toolserver("calc", [sys.executable, str(CALC)], **spec)


def _run(store, tmp_path, pipe: dict, *, script=None, agents=("worker",), extra=(TIME,), params=None):
    script = script or {"worker": [{"content": "ok"}]}
    folder = write_project(tmp_path / "m", script=script, agents=list(agents), pipelines={"p": pipe},
                           extra=list(extra))
    home = tmp_path / "home"
    apply(store, folder, home)
    result = run(store, "pipeline/p", home, params=params)
    return result, stream(store, result.id)


def _one(events, type_: str, path: str):
    found = [e for e in events if e.type == type_ and e.path == path]
    assert len(found) == 1, [(e.type, e.path) for e in events]
    return found[0]


def test_tool_output_feeds_a_later_agent_stage(store, tmp_path):
    pipe = {"params": {"zone": {"type": "string", "default": "Asia/Tokyo"}}, "stages": [
        {"name": "clock", "tool": {"toolServer": "time", "name": "get_current_time",
                                   "arguments": {"timezone": "{{ params.zone }}"}}},
        {"name": "report", "needs": ["clock"], "agent": "worker",
         "input": "It is {{ stages.clock.output.day_of_week }} in {{ stages.clock.output.timezone }}"},
    ], "output": "{{ stages.clock.output.timezone }}/{{ stages.report.output }}"}
    result, events = _run(store, tmp_path, pipe)
    assert result.status == "succeeded", result.error
    assert result.output == "Asia/Tokyo/ok"
    call = _one(events, "tool.call", "p/clock")
    assert call.data["arguments"] == {"timezone": "Asia/Tokyo"} and call.data["server"] == "default/time"
    clock = _one(events, "stage.completed", "p/clock").data["output"]
    assert clock["timezone"] == "Asia/Tokyo" and clock["datetime"][:4].isdigit()  # structured, as data
    assert _one(events, "stage.started", "p/clock").data["kind"] == "tool"
    task = _one(events, "agent.started", "p/report/worker").data["task"]
    assert task == f"It is {clock['day_of_week']} in Asia/Tokyo"
    assert events.index(call) < events.index(_one(events, "tool.result", "p/clock"))


def test_arguments_are_rendered_recursively_and_keep_native_values(store, tmp_path):
    pipe = {"params": {"a": {"type": "integer", "default": 2}}, "stages": [
        {"name": "sum", "tool": {"toolServer": "calc", "name": "add",
                                 "arguments": {"a": "{{ params.a }}", "b": "{{ params.a * 20 }}"}}},
        {"name": "again", "needs": ["sum"], "tool": {"toolServer": "calc", "name": "add",
                                                      "arguments": {"a": "{{ stages.sum.output }}", "b": 1}}},
    ]}
    result, events = _run(store, tmp_path, pipe, extra=[calc()], params={"a": "3"})
    assert result.status == "succeeded", result.error
    assert _one(events, "tool.call", "p/sum").data["arguments"] == {"a": 3, "b": 60}
    assert _one(events, "stage.completed", "p/sum").data["output"] == 63
    assert result.output == 64


def test_for_each_over_a_tool_stage(store, tmp_path):
    pipe = {"params": {"zones": {"type": "array", "default": ["Europe/Paris", "America/New_York", "UTC"]}},
            "stages": [{"name": "clock", "forEach": "{{ params.zones }}", "maxParallel": 2,
                        "tool": {"toolServer": "time", "name": "get_current_time",
                                 "arguments": {"timezone": "{{ item }}"}}}],
            "output": "{{ stages.clock.output | map(attribute='timezone') | join(',') }}"}
    result, events = _run(store, tmp_path, pipe)
    assert result.status == "succeeded", result.error
    assert result.output == "Europe/Paris,America/New_York,UTC"  # input order
    assert [e.path for e in events if e.type == "tool.call"].count("p/clock[1]") == 1


def test_a_tool_error_fails_the_stage_and_the_run(store, tmp_path):
    pipe = {"stages": [
        {"name": "clock", "tool": {"toolServer": "time", "name": "get_current_time",
                                   "arguments": {"timezone": "Mars/Olympus_Mons"}}},
        {"name": "after", "needs": ["clock"], "agent": "worker"},
    ]}
    result, events = _run(store, tmp_path, pipe)
    assert result.status == "failed" and result.exit_code == 1
    failed = _one(events, "stage.failed", "p/clock")
    assert "Mars/Olympus_Mons" in failed.data["error"]
    assert "stage 'clock'" in result.error and "Mars/Olympus_Mons" in result.error
    assert "error" in _one(events, "tool.result", "p/clock").data
    assert not [e for e in events if e.path.startswith("p/after") and e.type != "stage.skipped"]
    assert events[-1].type == "run.failed"


def test_continue_on_error_lets_the_run_go_on_after_a_tool_error(store, tmp_path):
    pipe = {"stages": [
        {"name": "boom", "continueOnError": True,
         "tool": {"toolServer": "calc", "name": "boom", "arguments": {"text": "kaput"}}},
        {"name": "after", "needs": ["boom"], "when": "{{ always() }}", "agent": "worker",
         "input": "boom was {{ stages.boom.status }}"},
    ], "output": "{{ stages.after.output }}"}
    result, events = _run(store, tmp_path, pipe, extra=[calc()])
    assert result.status == "succeeded", result.error
    failed = _one(events, "stage.failed", "p/boom").data
    assert "tool boom of default/calc failed" in failed["error"] and failed["continueOnError"] is True
    assert _one(events, "agent.started", "p/after/worker").data["task"] == "boom was failed"


def test_unknown_tool_name_fails_the_stage_with_the_name(store, tmp_path):
    pipe = {"stages": [{"name": "nope", "tool": {"toolServer": "time", "name": "get_the_weather",
                                                 "arguments": {}}}]}
    result, events = _run(store, tmp_path, pipe)
    assert result.status == "failed"
    error = _one(events, "stage.failed", "p/nope").data["error"]
    assert "tool server default/time has no tool get_the_weather" in error


def test_dead_server_and_timeout_fail_the_stage_and_the_stream_stays_whole(store, tmp_path):
    dead = toolserver("dead", [sys.executable, "-c", "raise SystemExit(3)"])
    pipe = {"stages": [
        {"name": "gone", "continueOnError": True,
         "tool": {"toolServer": "dead", "name": "anything", "arguments": {}}},
        {"name": "slow", "continueOnError": True,
         "tool": {"toolServer": "calc", "name": "slow", "arguments": {"seconds": 5}}},
        {"name": "crash", "continueOnError": True, "needs": ["slow"], "when": "{{ always() }}",
         "tool": {"toolServer": "calc", "name": "crash", "arguments": {}}},
    ]}
    result, events = _run(store, tmp_path, pipe, extra=[dead, calc(timeout="300ms")])
    assert result.status == "succeeded", result.error  # every failure was continueOnError
    assert "tool server default/dead did not start" in _one(events, "stage.failed", "p/gone").data["error"]
    assert "slow timed out after 0.3s" in _one(events, "stage.failed", "p/slow").data["error"]
    assert _one(events, "stage.failed", "p/crash").data["error"]
    assert events[-1].type == "run.completed"  # stream() already checked seq is contiguous


def test_template_error_in_arguments_names_the_argument(store, tmp_path):
    # `zone` is text, so `.missing` is undefined: only run time can tell.
    pipe = {"params": {"zone": {"type": "string", "default": "UTC"}},
            "stages": [{"name": "clock", "tool": {"toolServer": "time", "name": "get_current_time",
                                                  "arguments": {"timezone": "{{ params.zone.missing }}"}}}]}
    result, events = _run(store, tmp_path, pipe)
    assert result.status == "failed"
    error = _one(events, "stage.failed", "p/clock").data["error"]
    assert error.startswith("arguments.timezone:") and "missing" in error
    assert not [e for e in events if e.type == "tool.call"]
