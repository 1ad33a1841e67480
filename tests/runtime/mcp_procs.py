"""A stdio MCP server for the restart and environment tests.

As the "victim" it writes its pid to ``$PID_FILE`` when it starts and answers ``whoami``
(its pid and its parent's) and ``environment``; as the "killer" (the same file, another
ToolServer) its ``kill_victim`` SIGKILLs the pid in ``$PID_FILE`` and returns once the
process is dead (a zombie or gone), so the engine's next call finds a dead server.
"""

import logging
import os
import signal
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("procs")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO


@server.tool()
def whoami() -> dict:
    """This server's pid and its parent's."""
    return {"pid": os.getpid(), "ppid": os.getppid()}


@server.tool()
def environment() -> dict:
    """This server's whole environment."""
    return dict(os.environ)


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@server.tool()
def kill_victim() -> int:
    """SIGKILL the pid in $PID_FILE; return it once that process has died."""
    with open(os.environ["PID_FILE"]) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _dead(pid):  # observable state: the kernel says the process is gone
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pid} still alive")
        time.sleep(0.005)
    return pid


if __name__ == "__main__":
    if os.environ.get("ROLE") == "victim":
        with open(os.environ["PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
    server.run()
