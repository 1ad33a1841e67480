"""The ``local`` backend: a folder under the engine home; commands run under bubblewrap.

``<home>/workspaces/<namespace>/<name>`` holds the data; ``<home>/workspaces/.meta/`` what the
engine keeps about it (the seed marker, the journal of idempotent calls) out of the agents'
reach. A command runs as ``bwrap ... prlimit ... setpriv ... sh -c COMMAND``:

- bubblewrap: an empty root with the system folders read-only (``/usr`` and a few files of
  ``/etc``: no ``/etc/shadow``, no ``/root``, no engine home, no other workspace), the
  workspace bound read-write at its own path (so ``{{ workspace.path }}`` means the same
  inside), a private ``/tmp``, new PID/IPC/UTS (and network, unless ``network: egress``)
  namespaces, ``--new-session``, ``--die-with-parent``;
- prlimit: RLIMIT_CPU (``cpus`` x timeout seconds), RLIMIT_AS (``memory``), RLIMIT_NPROC
  (``pids``), RLIMIT_FSIZE, RLIMIT_NOFILE;
- setpriv (as root): the real unprivileged uid (65534 by default, ``AGENTFORM_SANDBOX_UID``),
  no capabilities (bounding and inheritable sets emptied), no-new-privs. RLIMIT_NPROC binds
  only a non-root uid, hence the switch; the count is per uid, so workspaces sharing one uid
  share the ``pids`` bound.

The wall-clock timeout kills bwrap's process group; ``--die-with-parent`` and the PID
namespace take everything the command started with it.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from agentform.engine.errors import PathRefused, WorkspaceError

from . import confine
from .backend import (
    OUTPUT_MARKER,
    CommandResult,
    FileEntry,
    FileListing,
    ProvisionResult,
    WorkspaceConfig,
    WorkspaceStatus,
)
from .journal import journal_path

# /etc files a command may need (users, the dynamic loader, alternatives); never shadow/sudoers.
_ETC = ("passwd", "group", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
        "mime.types", "nsswitch.conf")
_ETC_NET = ("hosts", "resolv.conf", "ssl", "ca-certificates", "gai.conf", "host.conf")
_SYSTEM = ("/usr",)
_MERGED = ("bin", "lib", "lib64", "sbin")          # Debian's merged /usr: symlinks into /usr
_KILL_GRACE = 2.0                                   # seconds to collect output after a kill
_MAX_STATUS_ENTRIES = 100_000
BWRAP_PACKAGE = "bubblewrap"


def is_root() -> bool:
    return os.geteuid() == 0


class LocalBackend:
    name = "local"

    # -- places ------------------------------------------------------------------------------
    def path(self, ws: WorkspaceConfig) -> str:
        return str(data_dir(ws))

    # -- provision / status / teardown ----------------------------------------------------------
    def provision(self, ws: WorkspaceConfig) -> ProvisionResult:
        warnings = list(self.warnings(ws))
        if ws.sandbox == "bubblewrap" and shutil.which("bwrap") is None:
            raise WorkspaceError(
                f"Workspace {ws.id}: bubblewrap (bwrap) is not installed on this machine: install the "
                f"'{BWRAP_PACKAGE}' package (apt-get install {BWRAP_PACKAGE}), or set `sandbox: none` on "
                "the Workspace for trusted local use (commands then run unsandboxed)")
        missing = [tool for tool in ("/usr/bin/prlimit", "/usr/bin/setpriv") if not os.path.exists(tool)]
        if missing:
            raise WorkspaceError(f"Workspace {ws.id}: {', '.join(missing)} not found: install the 'util-linux' "
                                 "package (commands run under prlimit and setpriv)")
        root = data_dir(ws)
        created = not root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        meta_dir(ws).mkdir(parents=True, exist_ok=True)
        os.chmod(root.parent, 0o755)
        if is_root():
            os.chown(root, ws.run_as_uid, ws.run_as_uid)
        seeded = 0
        marker = seed_marker(ws)
        if created:
            marker.unlink(missing_ok=True)      # a room made anew (or made again after it vanished)
        if not marker.exists():
            if ws.seed is not None:
                seeded = self._seed(ws, root)
            marker.write_text(json.dumps({"seededAt": time.time(), "files": seeded,
                                          "seed": str(ws.seed) if ws.seed else None}), encoding="utf-8")
        return ProvisionResult(path=str(root), created=created, seeded=seeded, warnings=tuple(warnings))

    def warnings(self, ws: WorkspaceConfig) -> list[str]:
        out = []
        if ws.sandbox == "none":
            out.append("SandboxDisabled: sandbox: none, commands run unsandboxed with the engine's rights")
        if ws.limits.pids is not None and (not is_root() or ws.sandbox == "none"):
            out.append("LimitNotEnforced: pids cannot be enforced per workspace when the engine is not root "
                       "(RLIMIT_NPROC does not bind the engine's own uid)")
        return out

    def _seed(self, ws: WorkspaceConfig, root: Path) -> int:
        seed = ws.seed
        assert seed is not None
        if not seed.is_dir():
            raise WorkspaceError(f"Workspace {ws.id}: seed folder {seed} does not exist on this machine")
        count = 0
        for dirpath, dirnames, filenames in os.walk(seed):
            rel = os.path.relpath(dirpath, seed)
            target = root if rel == "." else root / rel
            target.mkdir(exist_ok=True)
            self._own(ws, target)
            for name in filenames:
                src = os.path.join(dirpath, name)
                if os.path.islink(src):      # a seed's symlink could point anywhere: not copied
                    continue
                dst = target / name
                shutil.copyfile(src, dst)
                self._own(ws, dst)
                count += 1
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        return count

    def _own(self, ws: WorkspaceConfig, path: Path | str) -> None:
        if is_root():
            os.chown(path, ws.run_as_uid, ws.run_as_uid, follow_symlinks=False)

    def status(self, ws: WorkspaceConfig) -> WorkspaceStatus:
        root = data_dir(ws)
        if not root.is_dir():
            return WorkspaceStatus(False, str(root), 0, self.name)
        size, seen = 0, 0
        for _dir, _dirs, files, fd in os.fwalk(root, follow_symlinks=False):
            for name in files:
                try:
                    size += os.stat(name, dir_fd=fd, follow_symlinks=False).st_size
                except OSError:
                    continue
                seen += 1
            if seen > _MAX_STATUS_ENTRIES:
                break
        return WorkspaceStatus(True, str(root), size, self.name)

    def teardown(self, ws: WorkspaceConfig, *, delete_data: bool) -> str:
        root = data_dir(ws)
        if not delete_data:
            return f"kept the data of Workspace {ws.id} at {root} (delete it with --prune-data)"
        shutil.rmtree(root, ignore_errors=True)
        for path in (seed_marker(ws), journal_path(ws)):
            path.unlink(missing_ok=True)
        return f"deleted Workspace {ws.id} and its data ({root})"

    # -- files ---------------------------------------------------------------------------------
    def read_file(self, ws: WorkspaceConfig, path: str, *, max_bytes: int) -> bytes:
        root = self.path(ws)
        rel = confine.resolve(root, path)
        with confine.parent_fd(root, rel) as (fd, name):
            try:
                handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            except OSError as exc:
                raise _file_error(path, exc) from None
            try:
                info = os.fstat(handle)
                if stat.S_ISDIR(info.st_mode):
                    raise WorkspaceError(f"'{path}' is a folder: use list_files")
                if not stat.S_ISREG(info.st_mode):
                    raise PathRefused(path, "it is not a regular file")
                confine.check_links(path, info)
                if info.st_size > max_bytes:
                    raise WorkspaceError(f"'{path}' is {info.st_size} bytes, more than read_file returns "
                                         f"({max_bytes}); read a part with run_command (head, sed -n)")
                with os.fdopen(handle, "rb", closefd=False) as f:
                    return f.read(max_bytes + 1)[:max_bytes]
            finally:
                os.close(handle)

    def write_file(self, ws: WorkspaceConfig, path: str, data: bytes) -> None:
        if len(data) > ws.limits.file_size:
            raise WorkspaceError(f"'{path}': {len(data)} bytes is more than the workspace's file size "
                                 f"limit ({ws.limits.file_size})")
        root = self.path(ws)
        rel = confine.resolve(root, path)
        uid = ws.run_as_uid if is_root() else None
        with confine.parent_fd(root, rel, create=True, uid=uid) as (fd, name):
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise WorkspaceError(f"'{path}' is a folder")
            tmp = f".{name[:200]}.agentform-{os.getpid()}-{time.monotonic_ns()}"
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
            try:
                with os.fdopen(handle, "wb", closefd=False) as f:
                    f.write(data)
                if uid is not None:
                    os.fchown(handle, uid, uid)
            except BaseException:
                os.close(handle)
                os.unlink(tmp, dir_fd=fd)
                raise
            os.close(handle)
            # A rename replaces a symlink or a hard link itself, never what it points to.
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)

    def list_files(self, ws: WorkspaceConfig, path: str = ".", *, recursive: bool = False,
                   limit: int = 1000) -> FileListing:
        root = self.path(ws)
        rel = confine.resolve(root, path)
        try:
            top = confine.open_dir(root, rel)
        except OSError as exc:
            raise _file_error(path, exc) from None
        entries: list[FileEntry] = []
        prefix = f"{rel}/" if rel else ""
        try:
            for dirpath, dirs, files, fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
                names = [*sorted(dirs), *sorted(files)]
                dirs[:] = sorted(dirs) if recursive else []     # not recursive: the top folder only
                base = prefix + ("" if dirpath == "." else dirpath[2:] + "/")
                for name in names:
                    entry = _entry(base + name, name, fd)
                    if entry is not None:
                        entries.append(entry)
                if len(entries) > limit:
                    break
        finally:
            os.close(top)
        return FileListing(tuple(entries[:limit]), truncated=len(entries) > limit)

    # -- commands ------------------------------------------------------------------------------
    def run_command(self, ws: WorkspaceConfig, command: str, *, timeout: float | None = None,
                    env: dict[str, str] | None = None) -> CommandResult:
        if not data_dir(ws).is_dir():
            raise WorkspaceError(f"Workspace {ws.id} is not provisioned on this machine ({data_dir(ws)})")
        timeout = min(timeout or ws.limits.timeout, ws.limits.timeout)
        argv = self.argv(ws, command, timeout, env or {})
        return _execute(argv, timeout, ws.limits.output, cwd=self.path(ws),
                        env=None if ws.sandbox == "bubblewrap" else _environment(ws, env or {}))

    def argv(self, ws: WorkspaceConfig, command: str, timeout: float, env: dict[str, str]) -> list[str]:
        """The full argv of one command (bwrap, prlimit, setpriv, sh -c)."""
        inner = [*self._limits(ws, timeout)]
        root_user = is_root()
        if root_user and ws.sandbox == "bubblewrap":
            uid = str(ws.run_as_uid)
            inner += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                      "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"]
        inner += ["/bin/sh", "-c", command]
        if ws.sandbox == "none":
            return inner
        path = self.path(ws)
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--hostname", "workspace"]
        if ws.network == "none":
            args.append("--unshare-net")
        if not root_user:
            args.append("--unshare-user")
        for folder in _SYSTEM:
            if os.path.isdir(folder):
                args += ["--ro-bind", folder, folder]
        for name in _MERGED:
            target = f"/{name}"
            if os.path.islink(target):
                args += ["--symlink", os.readlink(target), target]
            elif os.path.isdir(target):
                args += ["--ro-bind", target, target]
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in (*_ETC, *(_ETC_NET if ws.network == "egress" else ())):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        # The workspace's ancestors exist inside (readable), empty but for it.
        ancestors = []
        parent = os.path.dirname(path)
        while parent not in ("/", ""):
            ancestors.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(ancestors):
            if folder != "/tmp":
                args += ["--perms", "0755", "--dir", folder]
        args += ["--bind", path, path, "--chdir", path, "--clearenv"]
        for key, value in _environment(ws, env).items():
            args += ["--setenv", key, value]
        if root_user:
            # setpriv needs these to switch to the unprivileged uid; it then drops every capability.
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                     "--cap-add", "CAP_SETPCAP"]
        else:
            args += ["--cap-drop", "ALL"]
        return [*args, "--", *inner]

    def _limits(self, ws: WorkspaceConfig, timeout: float) -> list[str]:
        lim = ws.limits
        out = ["/usr/bin/prlimit", f"--fsize={lim.file_size}", "--nofile=1024"]
        if lim.cpus is not None:
            seconds = max(1, math.ceil(lim.cpus * timeout))
            out.append(f"--cpu={seconds}:{seconds + 1}")     # SIGXCPU first, SIGKILL a second later
        if lim.memory is not None:
            out.append(f"--as={lim.memory}")
        if lim.pids is not None and is_root() and ws.sandbox == "bubblewrap":
            # only the sandbox uid's count is the workspace's own (the status says LimitNotEnforced otherwise)
            out.append(f"--nproc={lim.pids}")
        return [*out, "--"]


# -- helpers ------------------------------------------------------------------------------------

def data_dir(ws: WorkspaceConfig) -> Path:
    return Path(os.path.abspath(ws.home)) / "workspaces" / ws.namespace / ws.name


def meta_dir(ws: WorkspaceConfig) -> Path:
    return Path(os.path.abspath(ws.home)) / "workspaces" / ".meta"


def seed_marker(ws: WorkspaceConfig) -> Path:
    return meta_dir(ws) / f"{ws.slug}.seeded"


def _environment(ws: WorkspaceConfig, env: dict[str, str]) -> dict[str, str]:
    path = str(data_dir(ws))
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": path, "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "WORKSPACE": path}
    return {**base, **{k: str(v) for k, v in env.items()}}


def _entry(rel: str, name: str, dir_fd: int) -> FileEntry | None:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    mode = info.st_mode
    kind = ("dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode)
            else "symlink" if stat.S_ISLNK(mode) else "other")
    return FileEntry(rel, kind, info.st_size, info.st_mtime_ns)


def _file_error(path: str, exc: OSError) -> Exception:
    import errno

    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(f"'{path}' does not exist in the workspace")
    if exc.errno == errno.ELOOP:
        return PathRefused(path, "it is a symlink")
    if exc.errno == errno.ENOTDIR:
        return WorkspaceError(f"'{path}' is not a folder")
    return WorkspaceError(f"'{path}': {exc.strerror}")


_SIGNALS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file size", signal.SIGKILL: "killed"}


def _execute(argv: list[str], timeout: float, limit: int, *, cwd: str,
             env: dict[str, str] | None) -> CommandResult:
    """Run ``argv`` in its own process group; keep ``limit`` bytes per stream; kill it all at ``timeout``."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot start the command: {exc}") from None
    kept = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    total = {proc.stdout: 0, proc.stderr: 0}
    sel = selectors.DefaultSelector()
    for stream in kept:
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                if timed_out:
                    break                            # killed and still not closed: give up reading
                timed_out = True
                _kill(proc)
                deadline = time.monotonic() + _KILL_GRACE
                continue
            for key, _ in sel.select(min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.fileobj]
                total[key.fileobj] += len(chunk)
                if len(buf) <= limit:
                    buf += chunk[: limit + 1 - len(buf)]
        try:
            code = proc.wait(timeout=_KILL_GRACE)
        except subprocess.TimeoutExpired:
            _kill(proc)
            code = proc.wait()
    finally:
        sel.close()
        for stream in kept:
            stream.close()
        if proc.poll() is None:
            _kill(proc)
            proc.wait()
    out, out_cut = _text(kept[proc.stdout], total[proc.stdout], limit)
    err, err_cut = _text(kept[proc.stderr], total[proc.stderr], limit)
    reason = None
    exit_code: int | None = code
    if timed_out:
        reason, exit_code = "timeout", None
    elif code is not None and code < 0:
        reason, exit_code = _SIGNALS.get(-code, f"signal {-code}"), None
    elif code is not None and code > 128 and (code - 128) in _SIGNALS:
        reason = _SIGNALS[code - 128]        # bwrap and sh report a signalled child as 128 + signal
    return CommandResult(exit_code=exit_code, stdout=out, stderr=err, truncated=out_cut or err_cut,
                         timed_out=timed_out, killed_reason=reason)


def _text(kept: bytearray, total: int, limit: int) -> tuple[str, bool]:
    """What was kept of a stream, with the marker saying how much was dropped."""
    if total <= limit:
        return bytes(kept).decode("utf-8", "replace"), False
    return bytes(kept[:limit]).decode("utf-8", "ignore") + OUTPUT_MARKER.format(dropped=total - limit), True


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
