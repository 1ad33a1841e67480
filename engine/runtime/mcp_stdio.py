"""A stdio MCP server process whose environment and life the engine controls.

The SDK's ``stdio_client`` adds its own list of host variables (``HOME``, ``LOGNAME``,
``SHELL``, ``TERM``, ``USER``) to every server's environment and keeps the process to itself.
The engine needs both: a server's environment is exactly its manifest's ``env`` plus the few
host variables of ``HOST_VARS`` (nothing else of the host: no API token of the engine, no
cloud credential), and restarting a dead server needs to know that it died. Otherwise this
is the SDK's transport: the argv with no shell, a session (process group) of its own,
newline-delimited JSON-RPC on stdin/stdout, and a shutdown that closes stdin, waits, then
sends SIGTERM and SIGKILL to the group.

``Process.exited`` is true once the server's stdout has ended (set before the session sees
the end of its stream, so a call that fails because the server died finds it marked) or the
kernel reports the process dead: ``waitid(WNOWAIT)`` sees a zombie at once, where the event
loop's child watcher may learn of it only later on a busy machine, so a call never goes to a
server that is already dead. It does not reap: the loop's watcher still does.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import IO, Any

import anyio
from anyio.streams.text import TextReceiveStream

# Host variables a server inherits when the host has them (a manifest's ``env`` overrides
# each): PATH to find interpreters and tools, HOME for their caches and configuration
# (git, npm, uv), LANG for the text encoding of what they print, TMPDIR for scratch files.
HOST_VARS = ("PATH", "HOME", "LANG", "TMPDIR")

_WAITID = getattr(os, "waitid", None)
STDIN_GRACE = 2.0     # seconds a server has to exit after its stdin closes
TERM_GRACE = 2.0      # seconds between SIGTERM and SIGKILL


def server_environment(declared: dict[str, str]) -> dict[str, str]:
    """The whole environment of a stdio server: ``HOST_VARS`` the host has, then ``declared``."""
    env = {name: os.environ[name] for name in HOST_VARS if name in os.environ}
    env.update(declared)
    return env


class Process:
    """One start of a server: its process, and whether it has gone."""

    __slots__ = ("process", "_closed", "_status")

    def __init__(self) -> None:
        self.process: Any = None
        self._closed = False
        self._status: int | None = None   # as returncode: the exit code, or -signal

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def exited(self) -> bool:
        process = self.process
        if process is None:
            return self._closed
        if process.returncode is not None or self._status is not None:
            return True
        if _WAITID is None:  # not on every platform (macOS): the loop's watcher tells, later
            return self._closed
        try:
            info = _WAITID(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already by the loop's watcher
            return True
        if info is not None:
            self._status = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            return True
        return self._closed

    @property
    def exit_code(self) -> int | None:
        """The exit code (negative: the signal that ended it), once known."""
        if self.process is not None and self.process.returncode is not None:
            return self.process.returncode
        return self._status


@asynccontextmanager
async def stdio_transport(argv: list[str], env: dict[str, str], cwd: str | None, errlog: IO[Any] | None,
                          state: Process) -> AsyncIterator[tuple[Any, Any]]:
    """Start ``argv`` (no shell) with exactly ``env``; yield the MCP client's streams."""
    import mcp_types
    from mcp.shared.message import SessionMessage

    process = await anyio.open_process(argv, env=env, cwd=cwd, stderr=errlog, start_new_session=True)
    state.process = process
    read_writer, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, write_reader = anyio.create_memory_object_stream[Any](0)

    def parse(line: str) -> Any:
        try:
            return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError as exc:  # the session reports it to the pending request
            return exc

    async def read() -> None:
        buffer = ""
        try:
            async for chunk in TextReceiveStream(process.stdout, encoding="utf-8", errors="replace"):
                lines = (buffer + chunk).split("\n")
                buffer = lines.pop()
                for line in lines:
                    if line.strip():
                        await read_writer.send(parse(line))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            pass
        finally:
            state._closed = True  # before the session sees the end of the stream
            read_writer.close()

    async def write() -> None:
        try:
            async with write_reader:
                async for message in write_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(text.encode("utf-8"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading: end the session's stream so no request waits forever.
            state._closed = True
            read_writer.close()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        try:
            yield read_stream, write_stream
        finally:
            # Shielded and bounded: a cancelled run must neither leak the server nor hang on it.
            with anyio.CancelScope(shield=True):
                write_stream.close()
                read_stream.close()
                await _stop(process)
            tasks.cancel_scope.cancel()


def _running(process: Any) -> bool:
    """Whether the child has not exited. Only an unreaped child's pid (and group id) is
    surely still ours: once reaped, on a busy host with a small pid_max, the number may
    already name someone else's process, so it is never signalled then."""
    if process.returncode is not None:
        return False
    if _WAITID is None:
        return True
    try:
        return _WAITID(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


async def _stop(process: Any) -> None:
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    for sig, grace in ((None, STDIN_GRACE), (signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, TERM_GRACE)):
        if sig is not None:
            if not _running(process):
                break
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)  # the server's own group: its children go too
        if await _exited(process, grace):
            break
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdout.aclose()


async def _exited(process: Any, timeout: float) -> bool:
    # Polls the child's state: process.wait() would also wait for the pipes, which a child of
    # the server that outlives it keeps open.
    with anyio.move_on_after(timeout):
        while _running(process):
            await anyio.sleep(0.01)
        return True
    return False
