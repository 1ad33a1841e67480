"""What a tool server gets from the engine: a stdio server's environment is its manifest's
``env`` plus PATH, HOME, LANG and TMPDIR (nothing else of the host, no API token of the
engine); an http/sse server's ``headers`` go to its own origin only, never along a redirect
to another one."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from .helpers import agent, manifest, of, project, run

HERE = Path(__file__).parent
TOKEN = "tool-token-Hq4-not-for-others"


def test_a_stdio_server_sees_only_its_declared_environment_and_path(store, tmp_path, monkeypatch):
    from agentform.engine.runtime.mcp_stdio import HOST_VARS

    host_secrets = {"OPENAI_API_KEY": "sk-host-key-must-not-leak", "AWS_SECRET_ACCESS_KEY": "aws-host-secret-x",
                    "AGENTFORM_STORE": "postgresql://engine:pw@127.0.0.1/db"}
    for name, value in {**host_secrets, "USER": "someone", "SHELL": "/bin/sh", "TERM": "xterm",
                        "LOGNAME": "someone", "LANG": "C.UTF-8", "TMPDIR": str(tmp_path),
                        "TOOL_TOKEN_TEST": TOKEN}.items():
        monkeypatch.setenv(name, value)
    procs = manifest("ToolServer", "procs", {
        "command": [sys.executable, str(HERE / "mcp_procs.py")],
        "env": {"DECLARED": "plain value", "HOME": str(tmp_path / "tool-home"),
                "TOKEN": {"secretRef": "tool-token"}}})
    script = {"agents": {"solo": [{"toolCalls": [{"name": "environment", "arguments": {}}]}, {"content": "done"}]}}
    root = project(tmp_path / "m", script, [manifest("Secret", "tool-token", {"fromEnv": "TOOL_TOKEN_TEST"}), procs,
                                            agent("solo", tools=[{"toolServer": "procs", "allow": ["environment"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    env = json.loads(of(events, "tool.result", "solo")[0].data["output"])
    inherited = {name for name in HOST_VARS if name != "HOME"}
    assert set(env) == {"DECLARED", "HOME", "TOKEN"} | inherited
    assert env["DECLARED"] == "plain value" and env["TOKEN"] == "***"  # the secret, masked on its way back
    assert env["HOME"] == str(tmp_path / "tool-home")  # the manifest's value wins over the host's
    assert env["LANG"] == "C.UTF-8" and env["TMPDIR"] == str(tmp_path)
    text = json.dumps([e.data for e in events])
    assert not any(value in text for value in host_secrets.values())


class _Recorder:
    """An ASGI wrapper that keeps the headers of every request it is sent."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append({k.decode().lower(): v.decode() for k, v in scope.get("headers") or []})
        await self.app(scope, receive, send)


def _redirect_to(target: str):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 307,
                    "headers": [(b"location", (target + scope["path"]).encode())]})
        await send({"type": "http.response.body", "body": b""})

    return app


def _serve(app):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # observable state: uvicorn says it is listening
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    return server, thread, port


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_headers_are_not_sent_along_a_redirect_to_another_origin(store, tmp_path, monkeypatch, transport):
    from .mcp_calc import server as calc

    monkeypatch.setenv("TOOL_TOKEN_TEST", TOKEN)
    path = "/mcp" if transport == "http" else "/sse"
    other = _Recorder(calc.streamable_http_app() if transport == "http" else calc.sse_app())
    other_server, other_thread, other_port = _serve(other)
    first = _Recorder(_redirect_to(f"http://127.0.0.1:{other_port}"))
    first_server, first_thread, first_port = _serve(first)
    try:
        script = {"agents": {"solo": [{"content": "never"}]}}
        root = project(tmp_path / "m", script, [
            manifest("Secret", "tool-token", {"fromEnv": "TOOL_TOKEN_TEST"}),
            manifest("ToolServer", "calc", {"transport": transport, "url": f"http://127.0.0.1:{first_port}{path}",
                                            "headers": {"X-Api-Key": {"secretRef": "tool-token"},
                                                        "Authorization": {"secretRef": "tool-token",
                                                                          "format": "Bearer {}"}}}),
            agent("solo", tools=[{"toolServer": "calc"}])])
        result, events = run(store, tmp_path, root, "agent/solo")
    finally:
        for server in (first_server, other_server):
            server.should_exit = True
        first_thread.join(10)
        other_thread.join(10)
    # the server's own origin got the credentials: the redirect is what stopped them
    assert first.seen and first.seen[0]["x-api-key"] == TOKEN
    assert first.seen[0]["authorization"] == f"Bearer {TOKEN}"
    assert all(TOKEN not in json.dumps(headers) for headers in other.seen)
    assert result.status == "failed" and "tool server default/calc did not start" in result.error
    assert f"127.0.0.1:{other_port}" in result.error and TOKEN not in result.error
    assert all(TOKEN not in json.dumps(e.data) for e in events)
