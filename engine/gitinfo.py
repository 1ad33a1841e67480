"""Which git commit a manifest folder is at, and whether it has uncommitted changes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    dirty: bool = False


def git_info(path: Path) -> GitInfo:
    """The HEAD commit of the repository holding ``path`` and whether ``path`` has changes.

    Not in a repository (or no git installed): ``GitInfo(None, False)``.
    """
    path = Path(path).resolve()
    folder = path if path.is_dir() else path.parent
    try:
        head = _git(folder, "rev-parse", "HEAD")
        if head is None:
            return GitInfo()
        status = _git(folder, "status", "--porcelain", "--untracked-files=normal", "--", str(path))
    except OSError:
        return GitInfo()
    return GitInfo(commit=head.strip() or None, dirty=bool(status and status.strip()))


def _git(folder: Path, *args: str) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True, text=True, timeout=30,
        env={"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "PATH": _path_env()},
    )
    return proc.stdout if proc.returncode == 0 else None


def _path_env() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
