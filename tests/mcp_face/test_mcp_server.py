"""`agentform mcp`: a real server subprocess driven by the mcp client SDK over stdio: list what
runs, start a run of an example, follow it to its output, page its events, read its resource
and the cost; no approval tool without --allow-approve, and the approval flow with it."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _apply(home: Path, store_url: str, *examples: str) -> None:
    for example in examples:
        done = subprocess.run([sys.executable, "-m", "agentform.api.cli", "--home", str(home), "--store", store_url,
                               "apply", str(EXAMPLES / example)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr


def _server(home: Path, store_url: str, *flags: str) -> Client:
    return Client(StdioServerParameters(
        command=sys.executable, args=["-m", "agentform.api.cli", "--home", str(home), "--store", store_url,
                                      "mcp", *flags]), read_timeout_seconds=120)


async def _ok(client: Client, tool: str, arguments: dict) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_list_start_follow_and_read_a_run(tmp_path: Path, store_url: str):
    home = tmp_path / "home"
    _apply(home, store_url, "research-team", "content-pipeline")
    async with _server(home, store_url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"list_targets", "start_run", "get_run", "wait_run", "read_events", "cancel_run", "cost"}

        targets = (await _ok(client, "list_targets", {}))["targets"]
        assert {"team/default/research", "pipeline/default/content"} <= {t["target"] for t in targets}
        content = next(t for t in targets if t["target"] == "pipeline/default/content")
        assert set(content["params"]) == {"topic", "audience"}
        teams = (await _ok(client, "list_targets", {"kind": "teams"}))["targets"]
        assert {t["kind"] for t in teams} == {"Team"}

        started = await _ok(client, "start_run", {"target": "team/research", "input": "Heat pumps?"})
        run_id = started["run"]
        assert started["resource"] == f"agentform://runs/{run_id}"
        done = await _ok(client, "wait_run", {"run_id": run_id, "timeout_s": 120})
        assert done["status"] == "succeeded", done
        assert isinstance(done["output"], str) and done["output"]
        assert done["tokens"] > 0

        # Paging with next_after gives the whole stream once, in order.
        events, after = [], 0
        while True:
            page = await _ok(client, "read_events", {"run_id": run_id, "after": after, "limit": 7})
            events += page["events"]
            after = page["next_after"]
            if not page["more"]:
                break
        assert [e["seq"] for e in events] == list(range(1, done["last_seq"] + 1))
        assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.completed"
        assert events[-1]["data"].get("output", done["output"]) == done["output"]

        resource = await client.read_resource(f"agentform://runs/{run_id[:10]}")   # a unique prefix
        assert f'"id": "{run_id}"' in resource.contents[0].text and '"status": "succeeded"' in resource.contents[0].text
        cost = await _ok(client, "cost", {"by": "model"})
        assert cost["total"]["runs"] >= 1 and cost["total"]["tokensIn"] >= done["tokens_in"]

        # Errors come back as tool errors with the reason, not as a broken session.
        missing = await client.call_tool("start_run", {"target": "team/nope", "input": "x"})
        assert missing.is_error and "nope" in missing.content[0].text
        unknown = await client.call_tool("get_run", {"run_id": "zzzz"})
        assert unknown.is_error and "zzzz" in unknown.content[0].text
        approve = await client.call_tool("answer_approval", {"run_id": run_id, "approve": True})
        assert approve.is_error                                  # no such tool without the flag


async def test_approval_tool_only_with_allow_approve(tmp_path: Path, store_url: str):
    home = tmp_path / "home"
    _apply(home, store_url, "content-pipeline")
    async with _server(home, store_url, "--allow-approve") as client:
        assert "answer_approval" in {t.name for t in (await client.list_tools()).tools}
        run_id = (await _ok(client, "start_run", {"target": "pipeline/content",
                                                  "params": {"topic": "heat pumps"}}))["run"]
        waiting = await _ok(client, "wait_run", {"run_id": run_id, "timeout_s": 120})
        assert waiting["status"] == "waiting", waiting
        [approval] = waiting["approvals"]
        assert (approval["stage"], approval["message"]) == ("publish", "Publish the article about heat pumps?")
        answered = await _ok(client, "answer_approval", {"run_id": run_id, "approve": True, "message": "ok"})
        assert answered["run"] == run_id and answered["approved"] is True
        done = await _ok(client, "wait_run", {"run_id": run_id, "timeout_s": 120})
        assert done["status"] == "succeeded", done
        assert done["output"]
        types = [e["type"] for e in (await _ok(client, "read_events", {"run_id": run_id, "limit": 500}))["events"]]
        assert "approval.resolved" in types and types[-1] == "run.completed"


def test_building_the_server_leaves_the_root_logger_as_it_was(tmp_path: Path):
    from agentform import Engine
    from agentform.api.mcp.server import build_server

    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    root.setLevel(logging.WARNING)
    try:
        build_server(Engine(home=tmp_path / "home"), allow_approve=False)
        assert (root.level, root.handlers) == (logging.WARNING, before[1])
    finally:
        root.setLevel(before[0])


def test_the_wire_passes_the_redactor():
    import io
    import json

    from agentform import Engine
    from agentform.api.mcp.server import _RedactedWire
    from agentform.engine.redaction import register

    secret = "mcp-wire-s3cret-5d1e"
    register(secret)
    raw = io.StringIO()
    wire = _RedactedWire(raw, Engine.redact)
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"output": f"the key is {secret}"}})
    assert wire.write(message + "\n") == len(message) + 1
    assert secret not in raw.getvalue() and '"id": 1' in raw.getvalue()
