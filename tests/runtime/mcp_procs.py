"""A stdio MCP server for the restart and environment tests.

As the "victim" it writes its pid to ``$PID_FILE`` when it starts and answers ``whoami``
(its pid and its parent's) and ``environment``; as the "killer" (the same file, another
ToolServer) its ``kill_victim`` SIGKILLs the pid in ``$PID_FILE`` and returns once the
process is dead (a zombie with no thread left, or gone), so the engine's next call finds a
dead server.
"""

import logging
import os
import signal
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

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
    """Gone, or a zombie whose every thread has exited: only then are its pipes closed and its
    parent able to reap it (the leader shows Z while other threads of it are still exiting)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return tasks == [str(pid)] and state in ("Z", "X")


@server.tool()
def kill_victim() -> int:
    """SIGKILL the pid in $PID_FILE; return it once that process has died."""
    try:
        with open(os.environ["PID_FILE"]) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _dead(pid):  # observable state: the kernel says the process is gone
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pid} still alive")
            time.sleep(0.005)
    except Exception as exc:  # a ToolError's message reaches the test, any other's does not
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc
    return pid


if __name__ == "__main__":
    if os.environ.get("ROLE") == "victim":
        with open(os.environ["PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
    server.run()
