"""workspace: ``read_file``, ``write_file``, ``list_files``, ``run_command`` in the caller's workspace.

The MCP face of engine/workspaces/tools.py: the caller (and with it the workspace of the team
or pipeline around it) comes from ``_meta`` as for every built-in, the idempotency key from
``_meta["dev.agentform/idempotency-key"]``; a failure is a tool error the model reads.
"""

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from agentform.engine.workspaces.tools import ToolUseError, WorkspaceTools

from . import Caller, take_caller

IDEMPOTENCY_META = "dev.agentform/idempotency-key"


def _meta_value(meta: Any, key: str) -> Any:
    if isinstance(meta, dict):
        return meta.get(key)
    value = getattr(meta, key, None)
    if value is None and meta is not None:
        extra = getattr(meta, "model_extra", None) or {}
        value = extra.get(key)
    return value


def make_server(ctx: Any) -> MCPServer:
    host = WorkspaceTools(ctx)
    server = MCPServer("workspace")

    def caller(context: Context) -> tuple[Caller, str | None]:
        meta = context.request_context.meta
        return take_caller(meta), _meta_value(meta, IDEMPOTENCY_META)

    async def guarded(work: Any) -> Any:
        try:
            return await work
        except ToolUseError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="Read a text file of your workspace (path relative to the workspace root).")
    async def read_file(path: str, context: Context) -> str:
        who, _ = caller(context)
        return await guarded(host.read_file(who, path))

    @server.tool(description="Write a text file in your workspace (path relative to the workspace root; "
                 "folders are created; an existing file is replaced).")
    async def write_file(path: str, content: str, context: Context) -> dict[str, Any]:
        who, key = caller(context)
        return await guarded(host.write_file(who, path, content, key))

    @server.tool(description="List the files of a folder of your workspace ('.' is the root); recursive: "
                 "the whole tree below it.")
    async def list_files(context: Context, path: str = ".", recursive: bool = False) -> dict[str, Any]:
        who, _ = caller(context)
        return await guarded(host.list_files(who, path, recursive))

    @server.tool(description="Run a shell command (sh -c) in your workspace, sandboxed: only the workspace "
                 "is writable, no network unless the workspace allows it, bounded CPU, memory, processes "
                 "and time. Returns exit_code, stdout and stderr; a non-zero exit is an error.")
    async def run_command(command: str, context: Context, timeout: float | None = None) -> dict[str, Any]:
        who, key = caller(context)
        return await guarded(host.run_command(who, command, timeout, key))

    return server
