"""The per-workspace run lock: one executing run holds a workspace at a time.

An exclusive ``flock`` on ``<home>/workspaces/.locks/<namespace>--<name>.lock``, taken when a
run's execution starts and released when it ends (finished, parked waiting for an approval,
cancelled); the kernel releases it when the process dies, so a killed run never leaves a
stale lock and its resume takes it again. The holder writes who it is into the file, which is
what a waiting run shows. flock locks belong to open files, so two runs in one process exclude
each other too. A run takes the locks of all its graph's workspaces in sorted order (no
deadlock between two runs that share two). Workspaces are single-host: so is this lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentform.engine.errors import WorkspaceBusy

POLL_S = 0.1   # how often a waiting run tries again (flock has no async wait)


def lock_path(home: Path | str, workspace: str) -> Path:
    namespace, name = workspace.split("/", 1)
    return Path(os.path.abspath(home)) / "workspaces" / ".locks" / f"{namespace}--{name}.lock"


def holder_of(home: Path | str, workspace: str) -> str:
    """Who holds ``workspace`` as its holder wrote it ("" when free or unknown)."""
    try:
        return lock_path(home, workspace).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass
class HeldLocks:
    """The workspace locks one run execution holds; ``release`` is idempotent."""

    fds: dict[str, int] = field(default_factory=dict)

    def release(self) -> None:
        for fd in self.fds.values():
            try:
                os.ftruncate(fd, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self.fds.clear()


def _try(path: Path, holder: str) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode("utf-8"), 0)
    return fd


async def acquire(home: Path | str, workspaces: list[str], holder: str, *, wait: bool = True,
                  on_wait: Callable[[str, str], None] | None = None) -> HeldLocks:
    """Lock every workspace of ``workspaces`` for ``holder``. Busy: WorkspaceBusy at once unless
    ``wait``; waiting calls ``on_wait(workspace, holder)`` once per workspace and polls (a
    cancellation of the caller stops the wait)."""
    held = HeldLocks()
    try:
        for workspace in sorted(set(workspaces)):
            path = lock_path(home, workspace)
            text = f"{holder} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
            fd = _try(path, text)
            told = False
            while fd is None:
                other = holder_of(home, workspace) or "another run"
                if not wait:
                    raise WorkspaceBusy(workspace, other)
                if not told and on_wait is not None:
                    on_wait(workspace, other)
                    told = True
                await asyncio.sleep(POLL_S)
                fd = _try(path, text)
            held.fds[workspace] = fd
    except BaseException:
        held.release()
        raise
    return held
