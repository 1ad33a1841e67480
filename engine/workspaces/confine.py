"""Path confinement: a tool's path is relative to the workspace root and stays inside it.

``resolve`` checks the path as written (no absolute paths, no ``..`` leaving the root, no NUL,
bounded length) and then follows symlinks itself, one component at a time, refusing any that
points outside. ``open_in`` then opens the resolved path by walking directory descriptors with
``O_NOFOLLOW`` from the root, so a symlink swapped in between the check and the open is not
followed either (it fails instead). A regular file with more than one hard link is refused:
the other link may be anywhere on the filesystem, and nothing tells where.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from agentform.engine.errors import PathRefused

MAX_PATH = 1024        # characters of a tool path
MAX_LINKS = 40         # symlinks followed in one resolution (as the kernel's ELOOP bound)


def check_relative(path: str) -> list[str]:
    """The components of ``path`` as written; PathRefused when absolute, leaving, or malformed."""
    if not isinstance(path, str) or "\x00" in path:
        raise PathRefused(str(path)[:100], "it is not a plain text path")
    if len(path) > MAX_PATH:
        raise PathRefused(path[:100] + "...", f"it is longer than {MAX_PATH} characters")
    if path.startswith("/") or path.startswith("~"):
        raise PathRefused(path, "it is absolute (outside the workspace)")
    norm = posixpath.normpath(path or ".")
    if norm == ".." or norm.startswith("../"):
        raise PathRefused(path, "'..' leads out of the workspace")
    # Lexical '..' inside the workspace is folded first (a/../b is b), as a shell user expects.
    return [p for p in norm.split("/") if p not in ("", ".")]


def resolve(root: str, path: str) -> str:
    """``path`` with every symlink inside the workspace followed: a relative, link-free path
    ("" is the root). The last component need not exist. PathRefused when a link leads out."""
    pending = check_relative(path)
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":             # only from a symlink's target: checked against the root below
            if not done:
                raise PathRefused(path, "a symlink in it leads out of the workspace")
            done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            done.append(part)
            done.extend(p for p in pending if p not in ("", "."))
            if ".." in done:
                raise PathRefused(path, "'..' after a missing folder") from None
            return "/".join(done)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise PathRefused(path, f"more than {MAX_LINKS} symlinks")
            target = os.readlink(candidate)
            if target.startswith("/"):
                inside = _inside(root, target)
                if inside is None:
                    raise PathRefused(path, f"'{'/'.join([*done, part])}' is a symlink to {target}, "
                                            "outside the workspace")
                done = []
                pending = [*inside, *pending]
            else:
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        done.append(part)
    return "/".join(done)


def _inside(root: str, target: str) -> list[str] | None:
    """An absolute symlink target as components under ``root``, or None when outside it."""
    real_root = os.path.realpath(root)
    for base in (root, real_root):
        norm = posixpath.normpath(target)
        if norm == base:
            return []
        if norm.startswith(base.rstrip("/") + "/"):
            return [p for p in norm[len(base.rstrip("/")) + 1:].split("/") if p]
    return None


@contextmanager
def parent_fd(root: str, rel: str, *, create: bool = False, uid: int | None = None) -> Iterator[tuple[int, str]]:
    """(fd of ``rel``'s parent folder, last component), walked from ``root`` with O_NOFOLLOW;
    ``create`` makes missing folders (owned by ``uid`` when given)."""
    parts = [p for p in rel.split("/") if p]
    if not parts:
        raise PathRefused(rel or ".", "it names the workspace root, not a file")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                if uid is not None:
                    os.chown(part, uid, uid, dir_fd=fd, follow_symlinks=False)
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathRefused(rel, f"'{part}' is not a folder inside the workspace") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


def open_dir(root: str, rel: str) -> int:
    """A descriptor of folder ``rel`` (resolved), walked with O_NOFOLLOW; the caller closes it."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for part in [p for p in rel.split("/") if p]:
        try:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PathRefused(rel, f"'{part}' is not a folder inside the workspace") from None
            raise
        os.close(fd)
        fd = nxt
    return fd


def check_links(path: str, info: os.stat_result) -> None:
    """Refuse a regular file with several hard links (one may be outside the workspace)."""
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise PathRefused(path, f"it has {info.st_nlink} hard links, and another one may be outside "
                                "the workspace")
