"""What the workspace tools do for one run (the MCP face is engine/runtime/builtins/workspace.py).

Each call acts in the workspace of the nearest team or pipeline around the calling agent,
through that workspace's backend: paths confined (confine.py), commands sandboxed. Every
change is recorded as a ``workspace.changed`` event at the caller's path before the tool's
result (changes.py). ``write_file`` and ``run_command`` are journaled by idempotency key
(journal.py): repeated after a resume, they return what they returned the first time.
Failures raise ``ToolUseError``, whose message the model reads as the tool's error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentform.engine.errors import PathRefused, WorkspaceError

from . import changes
from .backend import CommandResult, WorkspaceBackend, WorkspaceConfig, backend_for
from .confine import check_relative
from .journal import Journal, journal_path
from .rooms import config_for, root_workspace

READ_MAX = 256 * 1024           # bytes read_file returns
LIST_MAX = 500                  # entries list_files returns
COMMAND_MAX = 64 * 1024         # characters of a command
WRITE_MAX = 8 * 1024 * 1024     # bytes write_file writes in one call


class ToolUseError(Exception):
    """A workspace tool failed; the message is the model's to read."""


class WorkspaceTools:
    """The workspace tools of one run (``ctx``: its RunContext)."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self._rooms: dict[str, tuple[WorkspaceConfig, WorkspaceBackend, changes.SeenContent]] = {}
        self._journals: dict[str, Journal] = {}

    def room(self, caller: Any) -> tuple[WorkspaceConfig, WorkspaceBackend, changes.SeenContent]:
        key = getattr(caller, "workspace", None) or root_workspace(self.ctx.graph)
        if key is None or key not in self.ctx.graph.workspaces:
            raise ToolUseError(f"agent {caller.node.name} has no workspace: workspace tools act in the "
                               "workspace of the team or pipeline that calls the agent (`workspace:` on it)")
        room = self._rooms.get(key)
        if room is None:
            config = config_for(self.ctx.graph, key, self.ctx.home)
            room = self._rooms[key] = (config, backend_for(config.backend), changes.SeenContent())
        return room

    # -- reads -------------------------------------------------------------------------------------
    async def read_file(self, caller: Any, path: str) -> str:
        config, backend, seen = self.room(caller)
        data = await self._call(backend.read_file, config, path, max_bytes=READ_MAX)
        text = changes._text(data)
        if text is None:
            raise ToolUseError(f"'{path}' is a binary file ({len(data)} bytes); read_file returns text")
        seen.keep(_norm(path), data)
        return text

    async def list_files(self, caller: Any, path: str = ".", recursive: bool = False) -> dict[str, Any]:
        config, backend, _ = self.room(caller)
        listing = await self._call(backend.list_files, config, path, recursive=recursive, limit=LIST_MAX)
        return {"path": path, "entries": [{"path": e.path, "kind": e.kind, "size": e.size} for e in listing.entries],
                "truncated": listing.truncated}

    # -- changes -----------------------------------------------------------------------------------
    async def write_file(self, caller: Any, path: str, content: str, key: str | None) -> dict[str, Any]:
        config, backend, seen = self.room(caller)
        journal = self._journal(config)
        again = self._again(journal, key, caller)
        if again is not None:
            return again
        data = content.encode("utf-8")
        if len(data) > WRITE_MAX:
            raise ToolUseError(f"the content is {len(data)} bytes; write_file writes at most {WRITE_MAX} in one call")
        rel = _norm(path)
        old: bytes | None = None
        exists = True
        try:
            old = await asyncio.to_thread(backend.read_file, config, path, max_bytes=changes.CACHE_FILE)
        except FileNotFoundError:
            exists = False
        except PathRefused as exc:
            raise ToolUseError(str(exc)) from None
        except (WorkspaceError, OSError):
            old = seen.get(rel)       # too large to diff (or not a file: the write says so)
        await self._call(backend.write_file, config, path, data)
        seen.keep(rel, data)
        result = {"path": rel, "bytes": len(data), "created": not exists}
        changed = None
        if old != data:
            change = changes.Change(rel, "modified" if exists else "added", len(data),
                                    changes.text_diff(rel, old if exists else None, data)
                                    if old is not None or not exists else None)
            changed = self._emit(config, caller, "write_file", key, [change])
        await asyncio.to_thread(journal.record, key or "", result=result, changed=changed)
        return result

    async def run_command(self, caller: Any, command: str, timeout: float | None,
                          key: str | None) -> dict[str, Any]:
        if len(command) > COMMAND_MAX:
            raise ToolUseError(f"the command is longer than {COMMAND_MAX} characters; write a script with "
                               "write_file and run it")
        config, backend, seen = self.room(caller)
        journal = self._journal(config)
        again = self._again(journal, key, caller)
        if again is not None:
            return again
        before = await self._snapshot(backend, config)
        result: CommandResult = await self._call(backend.run_command, config, command, timeout=timeout)
        after = await self._snapshot(backend, config)
        found = await self._changes(backend, config, seen, before, after)
        changed = self._emit(config, caller, "run_command", key, found, partial=len(after) >= changes.MAX_SNAPSHOT) \
            if found else None
        out = {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        if result.truncated:
            out["truncated"] = True
        error = None if result.ok else _failure(result, config)
        await asyncio.to_thread(journal.record, key or "", result=out, error=error, changed=changed)
        if error is not None:
            raise ToolUseError(error)
        return out

    # -- helpers -----------------------------------------------------------------------------------
    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except WorkspaceError as exc:
            raise ToolUseError(str(exc)) from None
        except FileNotFoundError as exc:
            where = args[1] if len(args) > 1 else ""
            raise ToolUseError(str(exc) if "workspace" in str(exc) else f"'{where}' does not exist in the workspace") \
                from None
        except OSError as exc:
            raise ToolUseError(f"{exc.strerror or exc}") from None

    async def _snapshot(self, backend: WorkspaceBackend, config: WorkspaceConfig) -> changes.Snapshot:
        listing = await self._call(backend.list_files, config, ".", recursive=True, limit=changes.MAX_SNAPSHOT)
        return changes.snapshot_of(listing)

    async def _changes(self, backend: WorkspaceBackend, config: WorkspaceConfig, seen: changes.SeenContent,
                       before: changes.Snapshot, after: changes.Snapshot) -> list[changes.Change]:
        out = []
        for path, kind in changes.compare(before, after):
            if kind == "deleted":
                out.append(changes.Change(path, "deleted", None, None))
                seen.keep(path, None)
                continue
            size = after[path][1]
            diff = None
            old = seen.get(path) if kind == "modified" else None
            if after[path][0] == "file" and size <= changes.CACHE_FILE and (kind == "added" or old is not None):
                try:
                    new = await asyncio.to_thread(backend.read_file, config, path, max_bytes=changes.CACHE_FILE)
                except (WorkspaceError, OSError):
                    new = None
                if new is not None:
                    diff = changes.text_diff(path, old, new)
                    seen.keep(path, new)
            out.append(changes.Change(path, kind, size, diff))  # type: ignore[arg-type]
        return out

    def _emit(self, config: WorkspaceConfig, caller: Any, tool: str, key: str | None,
              found: list[changes.Change], partial: bool = False) -> dict[str, Any]:
        call_id = key.rsplit(":", 1)[-1] if key else None
        data = changes.event_data(config.id, tool, call_id, found, partial)
        self.ctx.emit("workspace.changed", caller.path, data)
        return data

    def _journal(self, config: WorkspaceConfig) -> Journal:
        journal = self._journals.get(config.id)
        if journal is None:
            journal = self._journals[config.id] = Journal(journal_path(config))
        return journal

    def _again(self, journal: Journal, key: str | None, caller: Any) -> dict[str, Any] | None:
        """A repeat of a call the journal holds: its result again (its change event re-emitted
        only if the stream lost it), or its error raised."""
        entry = journal.find(key or "")
        if entry is None:
            return None
        changed = entry.get("changed")
        if changed is not None and not any(
                e.type == "workspace.changed" and e.path == caller.path and (e.data or {}).get("callId")
                == changed.get("callId") for e in getattr(self.ctx, "history", ())):
            self.ctx.emit("workspace.changed", caller.path, changed)
        if "error" in entry:
            raise ToolUseError(entry["error"])
        return entry.get("result")


def _norm(path: str) -> str:
    try:
        return "/".join(check_relative(path))
    except WorkspaceError:
        return path


def _failure(result: CommandResult, config: WorkspaceConfig) -> str:
    """The model's view of a command that failed, was killed or timed out."""
    if result.timed_out:
        head = f"the command was killed after its timeout ({config.limits.timeout:g}s, the workspace's limit)"
    elif result.killed_reason == "cpu":
        head = "the command was killed: it used up its CPU time (limits.cpus x timeout)"
    elif result.killed_reason == "file size":
        head = f"the command was killed: it wrote a file larger than {config.limits.file_size} bytes"
    elif result.killed_reason:
        head = f"the command was killed ({result.killed_reason})"
    else:
        head = f"the command exited with code {result.exit_code}"
    tail = []
    if result.stdout.strip():
        tail.append(f"stdout:\n{result.stdout[-4000:]}")
    if result.stderr.strip():
        tail.append(f"stderr:\n{result.stderr[-4000:]}")
    return "\n".join([head, *tail])
