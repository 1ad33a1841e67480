"""Benchmark: a tool call through the full engine path, built-in (in process) and stdio MCP.

    python bench/tools.py [--calls 1000] [--json]

One scripted agent makes ``--calls`` tool calls, one per model turn, through ``Engine.run``
on SQLite: the agent loop, schema-checked arguments, ``tool.call`` made durable before the
call (a store commit), the MCP client, redaction, ``tool.result``. The latency of one call is
the time from its ``tool.call`` event to its ``tool.result`` event (both taken when emitted);
the first 10 calls (server start, caches) are left out. Printed per kind: median, p90, and
the bare MCP round trip of the same tool without the engine (``mcp.Client`` alone), so the
engine's share shows. Kinds: team-control's ``list_agents`` (an in-process ``MCPServer``) and
the ``add`` tool of tests/runtime/mcp_calc.py over stdio. Target: a built-in call under 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
CALC = ROOT / "tests" / "runtime" / "mcp_calc.py"
WARMUP = 10
TARGET_MS = 1.0

HEAD = "apiVersion: agentform.dev/v1alpha1\n"


def _project(folder: Path, calls: int) -> None:
    def turns(tool: str, arguments: dict) -> list[dict]:
        return [{"toolCalls": [{"name": tool, "arguments": arguments}]} for _ in range(calls)] + [{"content": "done"}]

    script = {"agents": {"builtin-caller": turns("list_agents", {}), "stdio-caller": turns("add", {"a": 2, "b": 3})}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.yaml").write_text(json.dumps(script))
    docs = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"model": "scripted", "script": "script.yaml"}},
        {"kind": "ToolServer", "metadata": {"name": "calc"},
         "spec": {"transport": "stdio", "command": [sys.executable, str(CALC)]}},
        {"kind": "Agent", "metadata": {"name": "builtin-caller"},
         "spec": {"model": "m", "tools": [{"builtin": "team-control"}], "budget": {"maxTurns": calls + 5}}},
        {"kind": "Agent", "metadata": {"name": "stdio-caller"},
         "spec": {"model": "m", "tools": [{"toolServer": "calc", "allow": ["add"]}], "budget": {"maxTurns": calls + 5}}},
    ]
    (folder / "all.yaml").write_text("---\n".join(
        f"{HEAD}kind: {d['kind']}\nmetadata: {json.dumps(d['metadata'])}\nspec: {json.dumps(d['spec'])}\n" for d in docs))


async def _engine_latencies(engine, target: str) -> list[float]:
    started: dict[str, float] = {}
    latencies: list[float] = []

    def on_event(event) -> None:
        if event.type == "tool.call":
            started[event.data["id"]] = time.perf_counter()
        elif event.type == "tool.result":
            latencies.append(time.perf_counter() - started.pop(event.data["id"]))
            assert "error" not in event.data, event.data

    result = await engine.run(target, input="go", on_event=on_event)
    assert result.status == "succeeded", result.error
    return latencies[WARMUP:]


async def _bare_latencies(calls: int, only: str) -> dict[str, list[float]]:
    """The same tool through mcp.Client alone: what the engine adds is the difference."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from agentform.engine.runtime import builtins

    out: dict[str, list[float]] = {}
    run = SimpleNamespace(history=[])   # a fresh run with no agents made: all list_agents reads
    targets = {"builtin": (builtins.make_server("team-control", run), "list_agents", {}),
               "stdio": (StdioServerParameters(command=sys.executable, args=[str(CALC)]), "add", {"a": 2, "b": 3})}
    for kind, (server, tool, arguments) in targets.items():
        if kind != only:
            continue
        async with Client(server) as client:
            await client.list_tools()
            times = []
            for _ in range(calls + WARMUP):
                meta = None
                if kind == "builtin":   # the engine names the caller; here a stand-in the server accepts
                    meta = {builtins.CALLER_META: builtins.enroll_caller(builtins.Caller(_Nobody(), "bench"))}
                t0 = time.perf_counter()
                result = await client.call_tool(tool, arguments, meta=meta)
                times.append(time.perf_counter() - t0)
                assert not result.is_error, result
            out[kind] = times[WARMUP:]
    return out


class _Nobody:
    """A caller with no agents: list_agents answers with an empty list."""

    name = "bench"
    namespace = "default"


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": statistics.median(ordered) * 1000, "p90_ms": ordered[int(len(ordered) * 0.9)] * 1000,
            "calls": len(ordered)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from agentform import Engine

    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        _project(folder, args.calls + WARMUP)
        with Engine(home=Path(tmp) / "home") as engine:
            engine.apply(folder)
            for kind in ("builtin", "stdio"):
                figures[kind] = _summary(await _engine_latencies(engine, f"agent/{kind}-caller"))
                # right after, so that both figures of a kind see the same machine load
                bare = (await _bare_latencies(args.calls, kind))[kind]
                figures[kind]["bare_mcp_median_ms"] = statistics.median(bare) * 1000
    for kind in ("builtin", "stdio"):
        figures[kind]["engine_share_ms"] = figures[kind]["median_ms"] - figures[kind]["bare_mcp_median_ms"]
    figures["target"] = {"builtin_median_under_ms": TARGET_MS, "met": figures["builtin"]["median_ms"] < TARGET_MS}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"tool call through the full engine path (SQLite), {args.calls} calls, tool.call -> tool.result:")
    for kind, label in (("builtin", "built-in (team-control list_agents, in process)"),
                        ("stdio", "stdio MCP (calc add)")):
        f = figures[kind]
        print(f"  {label:50s} median {f['median_ms']:.3f} ms  p90 {f['p90_ms']:.3f} ms  "
              f"(bare MCP call {f['bare_mcp_median_ms']:.3f} ms, engine {f['engine_share_ms']:.3f} ms)")
    verdict = "met" if figures["target"]["met"] else "NOT met"
    print(f"  target: a built-in call under {TARGET_MS:g} ms: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
