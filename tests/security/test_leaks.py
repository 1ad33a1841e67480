"""No secret value leaves the engine: one canary secret, every path that could carry it, every
place the engine writes, searched for the raw value and its encodings.

The canary (``sk-canary-<hex>  <hex>``: its two spaces do not survive whitespace collapsing
unredacted) is a Model's ``apiKey``, a stdio ToolServer's ``env`` and an HTTP ToolServer's
``Authorization`` header. It comes back through a tool that echoes its environment, a tool
returning it as a plain string, base64 of a 0-, 1- and 2-byte prefix plus the key, a tool
server that prints it to stderr and crashes (mid-call, and before it speaks MCP), an HTTP
tool returning it, a fake provider echoing it in a 401 and in a reply streamed in
3-character chunks. Everything runs in real ``agentform`` processes; then stdout, stderr,
every text column of every table of the store and every file under the home are searched.

A scripted turn that repeats a secret: validate and plan never resolve secrets, so a value
written into a committed script is in the repository (and in the pinned revision and plan
output) before the engine can know it is secret. The honest promise is about the run: the
second canary ``PARROT`` is committed in the script *and* is the value of a Secret the run
resolves (the tool server's ``env``); nothing the run writes (events, run record, its stdout
and stderr, ``logs``) may carry it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from agentform.engine.redaction import encoded_forms

from .provider import EchoProvider

HERE = Path(__file__).parent
CLI = [sys.executable, "-c", "from agentform.api.cli import main; main()"]
CANARY = f"sk-canary-{secrets.token_hex(8)}  {secrets.token_hex(8)}"
PARROT = f"pk-parrot-{secrets.token_hex(12)}"
HEAD = "apiVersion: agentform.dev/v1alpha1\n"


def needles(value: str) -> set[str]:
    """The value, its encodings, its whitespace-collapsed form and every 12-character piece of
    both (a key cut short must not survive either)."""
    collapsed = " ".join(value.split())
    found = encoded_forms(value) | encoded_forms(collapsed)
    for text in (value, collapsed):
        found |= {text[i:i + 12] for i in range(len(text) - 11)}
    return found


def hits(text: str, value: str) -> list[str]:
    return sorted(n for n in needles(value) if n in text)


def doc(kind: str, name: str, spec: dict) -> str:
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps({'name': name})}\nspec: {json.dumps(spec)}\n"


def manifests(root: Path, provider_url: str, http_url: str) -> Path:
    root.mkdir(parents=True)
    tools = [{"name": "environment", "arguments": {}}, {"name": "plain", "arguments": {}},
             *({"name": "encoded", "arguments": {"prefix": n}} for n in range(3)),
             {"name": "whoami", "arguments": {}}]
    script = {"agents": {
        "toolman": [{"toolCalls": tools}, {"toolCalls": [{"name": "crash", "arguments": {}}]},
                    {"content": "done"}],
        "parrot": [{"content": f"the key is {PARROT}, said the parrot", "stream": "words"}],
        "breaker": [{"content": "never"}],
    }}
    (root / "script.yaml").write_text(json.dumps(script))
    leaky = [sys.executable, str(HERE / "leaky_server.py")]
    key = {"secretRef": "canary"}
    docs = [
        doc("Secret", "canary", {"fromEnv": "LEAK_KEY"}),
        doc("Secret", "parrot-key", {"fromEnv": "PARROT_KEY"}),
        doc("Model", "m", {"model": "scripted", "script": "script.yaml"}),
        doc("Model", "echo", {"model": "openai/echo", "baseUrl": provider_url, "apiKey": key}),
        doc("Model", "denied", {"model": "openai/denied", "baseUrl": provider_url, "apiKey": key, "retries": 0}),
        doc("ToolServer", "leaky", {"transport": "stdio", "command": leaky, "timeout": "20s",
                                    "env": {"LEAK_KEY": key, "PARROT_KEY": {"secretRef": "parrot-key"}}}),
        doc("ToolServer", "broken", {"transport": "stdio", "command": [*leaky, "broken"], "env": {"LEAK_KEY": key}}),
        doc("ToolServer", "remote", {"transport": "http", "url": http_url,
                                     "headers": {"Authorization": {"secretRef": "canary", "format": "Bearer {}"}}}),
        doc("Agent", "toolman", {"model": "m", "tools": [{"toolServer": "leaky"}, {"toolServer": "remote"}]}),
        doc("Agent", "parrot", {"model": "m", "tools": [{"toolServer": "leaky", "allow": ["plain"]}]}),
        doc("Agent", "breaker", {"model": "m", "tools": [{"toolServer": "broken"}]}),
        doc("Agent", "talker", {"model": "echo"}),
        doc("Agent", "refused", {"model": "denied"}),
    ]
    (root / "all.yaml").write_text("---\n".join(docs))
    return root


class HttpToolServer:
    """The HTTP ToolServer, served by uvicorn in this process on a free loopback port."""

    def __init__(self, token: str):
        import uvicorn

        from .leaky_http import http_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(http_app(token), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:  # observable state: uvicorn says it is listening
            assert time.monotonic() < deadline, "the MCP HTTP server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}/mcp"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def store_rows(store_url: str) -> dict[str, str]:
    """Every row of every table of the store, as text, by table."""
    tables: dict[str, list[str]] = {}
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
                tables[name] = [" | ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                                           for v in row) for row in rows]
    else:
        import psycopg
        from psycopg import sql

        from agentform.engine.store.postgres import parse_pg_url

        url, schema = parse_pg_url(store_url)
        with psycopg.connect(url) as db:
            names = [r[0] for r in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
            for name in names:
                query = sql.SQL("SELECT CAST(t AS text) FROM {}.{} AS t").format(
                    sql.Identifier(schema), sql.Identifier(name))
                tables[name] = [r[0] for r in db.execute(query)]
    return {name: "\n".join(rows) for name, rows in tables.items()}


def test_no_secret_reaches_any_output(store_url, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "LEAK_KEY": CANARY, "PARROT_KEY": PARROT, "CI": "true",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "AGENTFORM_RETRY_BASE": "0.01"}
    outputs: list[tuple[str, str]] = []   # (what, text) of every CLI call
    run_outputs: list[str] = []           # what the runs themselves printed and logged

    def af(*args: str, code: int | None = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([*CLI, "--home", str(home), "--store", store_url, *args], capture_output=True,
                              text=True, env=env, timeout=120, cwd=tmp_path)
        outputs.append((" ".join(args), done.stdout + done.stderr))
        if code is not None:
            assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    with EchoProvider() as provider, HttpToolServer(CANARY) as http_url:
        root = manifests(tmp_path / "repo", provider.url, http_url)
        af("plan", str(root), code=None)
        af("apply", str(root))
        af("plan", str(root), code=None)
        runs = (("toolman", 0, ()), ("parrot", 0, ("-o", "json")), ("talker", 0, ()),
                ("refused", 1, ("--debug",)), ("breaker", 1, ()))
        for target, code, extra in runs:
            debug = [a for a in extra if a == "--debug"]
            done = af(*debug, "run", f"agent/{target}", "-i", "go", *(a for a in extra if a != "--debug"),
                      code=code)
            run_outputs.append(done.stdout + done.stderr)
        listed = json.loads(af("runs", "-o", "json").stdout)
        ids = {target: next(r["id"] for r in listed if r["target"].endswith(f"/{target}"))
               for target, _, _ in runs}
        logs = {target: af("logs", run_id, "-o", "jsonl").stdout for target, run_id in ids.items()}
        run_outputs += logs.values()
        for kind in ("secrets", "models", "toolservers", "agents"):
            af("get", kind, "-o", "yaml")
        for target in ("model/echo", "model/denied", "toolserver/leaky", "toolserver/remote", "secret/canary"):
            af("describe", target, "-o", "yaml")

    # The paths were taken: the provider got the real key, the tools ran, the errors happened.
    assert provider.keys and set(provider.keys) == {CANARY}
    events = {target: [json.loads(line) for line in text.splitlines() if line.strip()]
              for target, text in logs.items()}
    results = [e["data"] for e in events["toolman"] if e["type"] == "tool.result"]
    assert len(results) == 7 and sum("output" in r for r in results) == 6, results
    assert any("crash" == r["name"] and "error" in r for r in results)
    assert "***" in json.dumps(results)
    deltas = [e["data"]["text"] for e in events["talker"] if e["type"] == "message.delta"]
    assert "".join(deltas) == "Your key is ***; keep it safe.", deltas
    assert any(e["type"] == "run.failed" and "401" in e["data"]["error"] for e in events["refused"])
    assert any(e["type"] == "run.failed" for e in events["breaker"])
    assert (home / "logs" / "toolservers").is_dir()

    leaks = []
    for what, text in outputs:
        leaks += [(f"output of `{what}`", n) for n in hits(text, CANARY)]
    for table, text in store_rows(store_url).items():
        leaks += [(f"table {table}", n) for n in hits(text, CANARY)]
        if table in ("runs", "events"):
            leaks += [(f"table {table} (scripted turn)", n) for n in hits(text, PARROT)]
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        leaks += [(f"file {path.relative_to(home)}", n) for n in hits(text, CANARY)]
    for text in run_outputs:
        leaks += [("a run's output (scripted turn)", n) for n in hits(text, PARROT)]
    for target, stream in events.items():
        # A key split across chunks shows in no single event: read each path's deltas joined.
        by_path: dict[str, str] = {}
        for e in stream:
            if e["type"] == "message.delta":
                by_path[e["path"]] = by_path.get(e["path"], "") + e["data"]["text"]
        for path, text in by_path.items():
            leaks += [(f"message.delta stream of {target} at {path}", n)
                      for value in (CANARY, PARROT) for n in hits(text, value)]
    where = sorted({place for place, _ in leaks})
    assert not leaks, f"the secret leaked into {where}; pieces found: {sorted({n for _, n in leaks})[:10]}"
