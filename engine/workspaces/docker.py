"""The ``docker`` backend: a container per workspace, its data in a named volume.

Through the Docker Engine API (the ``docker`` SDK, imported here only), so any engine that
speaks it works: Docker, or podman's ``system service``. ``DOCKER_HOST`` (and
``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``) selects the engine, as for the docker CLI.

- Names: ``agentform-<home hash>-<namespace>--<name>`` for both the container and the volume
  (two engine homes sharing one Docker engine never meet). The volume is mounted at
  ``/workspace``, what tools and ``{{ workspace.path }}`` see.
- The container: ``network_mode: none`` unless ``network: egress``; every capability dropped;
  ``no-new-privileges``; a read-only root with a tmpfs ``/tmp``; pids, memory (no swap) and
  CPU (``nano_cpus`` = ``cpus`` cores) limits; the unprivileged uid
  (``run_as_uid``, 65534) for its process and every exec; ``init`` (else zombies count
  against the pids limit). Its process only waits (``tail -f /dev/null``); commands are execs.
- Provision (idempotent) makes what is missing: pulls the image if the engine lacks it, creates
  the volume (handing ``/workspace`` to the uid with a one-shot container that may only chown),
  creates and starts the container, or recreates it when it vanished or its settings changed
  (a label holds their hash). The seed is copied in once (a marker beside the local backend's).
- A command is ``sh -c`` in an exec; the exec's shell leads its own session (runc), so its
  process group is the command's processes: killed at the timeout, and after the command ends
  (what it left running in the background: off the command's path, in a thread that the next
  exec in the container waits for). When even that exec cannot start (a process storm filled
  the pids limit), the container is restarted: nothing of the command survives.
- File tools run small POSIX shell scripts in the container as the uid: the path is resolved
  there (``readlink -f``) and refused when it leaves ``/workspace``; writes land as a hidden
  upload (an archive) renamed into place. The container, not these checks, is the security
  boundary: nothing of the host is inside it to reach.

The image needs ``/bin/sh`` and the usual tools (``tail``, ``cat``/``head``, ``find``,
``stat``, ``readlink``, ``mkdir``, ``mv``, ``du``, ``chown``): Debian-based images and busybox
have them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import selectors
import socket
import ssl
import tarfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentform.engine.errors import PathRefused, WorkspaceError
from agentform.engine.store.base import Condition

from .backend import (
    OUTPUT_MARKER,
    CommandResult,
    FileEntry,
    FileListing,
    ProvisionResult,
    WorkspaceConfig,
    WorkspaceStatus,
)
from .confine import check_relative

ROOT = "/workspace"                     # where the volume is mounted in the container
TMPFS_SIZE = 64 * 1024 * 1024           # bytes of /tmp (counted in the memory limit too)
OPS_TIMEOUT = 60.0                      # seconds for a file operation's exec
_KILL_GRACE = 2.0                       # seconds to collect output after a kill
_LABEL = "dev.agentform.workspace"
_CONFIG_LABEL = "dev.agentform.config"
_DEFAULT_HOST = "unix:///var/run/docker.sock"
_UPLOAD = ".agentform-upload-"
# The exec's shell prints its pid (= its process group: runc makes it a session leader) on
# stderr's first line, lowers RLIMIT_FSIZE ($2, 512-byte blocks) and RLIMIT_NOFILE, then becomes
# the command. Not container ulimits: podman then drops its configured defaults, and a
# container's nproc ulimit would count every process of the uid on the host.
_WRAPPER = 'printf "%s\\n" "$$" >&2; ulimit -f "$2" 2>/dev/null; ulimit -n 1024 2>/dev/null; exec /bin/sh -c "$1"'
_HANDSHAKE = "read -r _ || :; exec </dev/null\n"

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
# Container id -> threads killing what finished commands left running. Off the command's path;
# the next exec in that container waits for them (non-daemon: the process waits at exit too).
_cleanups: dict[str, list[threading.Thread]] = {}
_cleanups_lock = threading.Lock()


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or _DEFAULT_HOST


def client() -> Any:
    """The Docker client of ``DOCKER_HOST`` (one per host, pinged once); WorkspaceError when
    the SDK is missing or no engine answers."""
    host = engine_host()
    with _clients_lock:
        found = _clients.get(host)
        if found is not None:
            return found
        try:
            import docker
        except ImportError:
            raise WorkspaceError("the docker workspace backend needs the docker SDK: "
                                 "pip install 'agentform[docker]'") from None
        try:
            made = docker.from_env(timeout=OPS_TIMEOUT)
            made.ping()
        except Exception as exc:  # noqa: BLE001 - DockerException, requests' errors: all mean "not there"
            raise WorkspaceError(
                f"no Docker engine answers at {host} ({_short(exc)}): start Docker (or `podman system "
                "service`), or point DOCKER_HOST at one (unix:///var/run/docker.sock, tcp://HOST:2376 with "
                "DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)") from None
        _clients[host] = made
        return made


def resource_name(ws: WorkspaceConfig) -> str:
    """The container's and the volume's name (the engine home's hash keeps homes apart)."""
    home = hashlib.sha256(os.path.abspath(ws.home).encode()).hexdigest()[:8]
    return f"agentform-{home}-{ws.slug}"


@dataclass(slots=True)
class _Exec:
    code: int | None
    out: bytes
    out_total: int
    err: bytes
    err_total: int
    timed_out: bool = False


class DockerBackend:
    name = "docker"

    def path(self, ws: WorkspaceConfig) -> str:
        return ROOT

    # -- provision / status / teardown ----------------------------------------------------------
    def provision(self, ws: WorkspaceConfig) -> ProvisionResult:
        from .local import meta_dir, seed_marker

        created = self._volume(ws)
        container = self._container(ws)
        if not created:
            self._end_orphans(ws, container)
        seeded = 0
        marker = seed_marker(ws)
        if created or not marker.exists():
            if ws.seed is not None:
                seeded = self._seed(ws)
            meta_dir(ws).mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"seededAt": time.time(), "files": seeded,
                                          "seed": str(ws.seed) if ws.seed else None}), encoding="utf-8")
        return ProvisionResult(path=ROOT, created=created, seeded=seeded)

    def status(self, ws: WorkspaceConfig) -> WorkspaceStatus:
        import docker.errors

        name = resource_name(ws)
        where = f"{name}:{ROOT} (volume {name}, Docker engine {engine_host()})"
        with _api(ws, "read the workspace's state"):
            try:
                client().volumes.get(name)
            except docker.errors.NotFound:
                return WorkspaceStatus(False, where, 0, self.name, (Condition(
                    "Ready", "False", "VolumeMissing", f"the volume {name} does not exist; apply or a run "
                    "creates it empty (and seeds it)"),))
            container = self._find(name)
        if container is None:
            return WorkspaceStatus(False, where, 0, self.name, (Condition(
                "Ready", "False", "ContainerMissing", f"the container {name} is gone (removed outside "
                f"agentform); the next apply or run recreates it over the volume {name}, whose data is kept"),))
        if container.status != "running":
            return WorkspaceStatus(True, where, 0, self.name, (Condition(
                "Ready", "False", "ContainerStopped", f"the container {name} is {container.status}; the next "
                "run starts it"),))
        done = self._exec(ws, container, f"du -s -k {ROOT}", timeout=OPS_TIMEOUT, limit=4096)
        first = done.out.split(b"\t", 1)[0].strip()
        size = int(first) * 1024 if done.code == 0 and first.isdigit() else 0
        return WorkspaceStatus(True, where, size, self.name)

    def teardown(self, ws: WorkspaceConfig, *, delete_data: bool) -> str:
        import docker.errors

        from .journal import journal_path
        from .local import seed_marker

        name = resource_name(ws)
        with _api(ws, "remove the workspace"):
            container = self._find(name)
            if container is not None:
                _settle(container.id)
                container.remove(force=True)
            if not delete_data:
                return (f"removed the container of Workspace {ws.id}; kept its data in the volume {name} on the "
                        f"Docker engine at {engine_host()} (delete it with --prune-data)")
            try:
                client().volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        for path in (seed_marker(ws), journal_path(ws)):
            path.unlink(missing_ok=True)
        return f"deleted Workspace {ws.id}: its container and its volume {name} (Docker engine {engine_host()})"

    # -- the engine's objects -------------------------------------------------------------------
    def _find(self, name: str) -> Any:
        import docker.errors

        try:
            return client().containers.get(name)
        except docker.errors.NotFound:
            return None

    def _volume(self, ws: WorkspaceConfig) -> bool:
        """Make the volume when missing, owned by the uid; True when it was made now."""
        import docker.errors

        name = resource_name(ws)
        with _api(ws, "create the workspace's volume"):
            try:
                client().volumes.get(name)
                return False
            except docker.errors.NotFound:
                pass
            self._image(ws)                         # before the volume: a failed pull leaves nothing
            client().volumes.create(name, labels={_LABEL: ws.id})
            # A new volume's root belongs to root: hand it to the uid from a container that may
            # do nothing but chown, and only this once.
            uid = ws.run_as_uid
            helper = client().containers.create(
                ws.image, [f"{uid}:{uid}", ROOT], entrypoint=["chown"], user="0:0", network_mode="none",
                cap_drop=["ALL"], cap_add=["CHOWN"], security_opt=["no-new-privileges"], read_only=True,
                volumes={name: {"bind": ROOT, "mode": "rw"}}, labels={_LABEL: ws.id})
            try:
                helper.start()
                code = helper.wait(timeout=OPS_TIMEOUT).get("StatusCode")
                why = helper.logs().decode("utf-8", "replace").strip() if code != 0 else ""
            except docker.errors.APIError as exc:
                code, why = -1, _short(exc)
            finally:
                helper.remove(force=True)
            if code != 0:
                client().volumes.get(name).remove(force=True)
                raise WorkspaceError(f"Workspace {ws.id}: cannot give {ROOT} to uid {uid} in image {ws.image} "
                                     f"({why or code}); the image needs chown")
            return True

    def _image(self, ws: WorkspaceConfig) -> None:
        import docker.errors
        from docker.utils import parse_repository_tag

        try:
            client().images.get(ws.image)
            return
        except docker.errors.ImageNotFound:
            pass
        repo, tag = parse_repository_tag(ws.image or "")
        try:
            client().images.pull(repo, tag=tag or "latest")
        except docker.errors.APIError as exc:
            raise WorkspaceError(f"Workspace {ws.id}: the image {ws.image} is not on the Docker engine at "
                                 f"{engine_host()} and could not be pulled ({_short(exc)}); pull or build it "
                                 "there, or name an image the engine has") from None

    def _settings(self, ws: WorkspaceConfig) -> dict[str, Any]:
        lim = ws.limits
        name = resource_name(ws)
        uid = ws.run_as_uid
        settings: dict[str, Any] = {
            "image": ws.image, "entrypoint": ["tail"], "command": ["-f", "/dev/null"], "name": name,
            "user": f"{uid}:{uid}", "working_dir": ROOT, "init": True,
            "environment": {"HOME": ROOT, "WORKSPACE": ROOT, "TMPDIR": "/tmp", "LANG": "C.UTF-8"},
            "volumes": {name: {"bind": ROOT, "mode": "rw"}},
            "network_mode": "none" if ws.network == "none" else None,
            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
            "read_only": True, "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMPFS_SIZE},mode=1777"},
        }
        if lim.pids is not None:
            settings["pids_limit"] = lim.pids
        if lim.memory is not None:
            settings["mem_limit"] = settings["memswap_limit"] = lim.memory
        if lim.cpus is not None:
            settings["nano_cpus"] = int(lim.cpus * 1e9)
        if settings["network_mode"] is None:
            del settings["network_mode"]
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        settings["labels"] = {_LABEL: ws.id, _CONFIG_LABEL: digest, "dev.agentform.owner": ws.owner}
        return settings

    def _container(self, ws: WorkspaceConfig) -> Any:
        """The running container: started, or made again when missing or when its settings changed."""
        import docker.errors

        settings = self._settings(ws)
        with _api(ws, "start the workspace's container"):
            container = self._find(settings["name"])
            if container is not None and container.labels.get(_CONFIG_LABEL) != settings["labels"][_CONFIG_LABEL]:
                _settle(container.id)
                container.remove(force=True)        # limits, image or network changed: the data stays
                container = None
            if container is None:
                self._image(ws)
                try:
                    container = client().containers.create(**settings)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                    container = client().containers.get(settings["name"])   # another process made it
            if container.status != "running":
                container.start()
                container.reload()
            return container

    def _running(self, ws: WorkspaceConfig) -> Any:
        """The container for an operation; recreated here when it vanished (its volume stays)."""
        name = resource_name(ws)
        with _api(ws, "find the workspace's container"):
            container = self._find(name)
        if container is not None and container.status == "running":
            return container
        self._volume(ws)
        return self._container(ws)

    # -- seed ----------------------------------------------------------------------------------
    def _seed(self, ws: WorkspaceConfig) -> int:
        seed = ws.seed
        assert seed is not None
        if not seed.is_dir():
            raise WorkspaceError(f"Workspace {ws.id}: seed folder {seed} does not exist on this machine")
        buf = io.BytesIO()
        count = 0
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for dirpath, dirnames, filenames in os.walk(seed):
                dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
                rel = os.path.relpath(dirpath, seed)
                if rel != ".":
                    tar.addfile(_tar_info(rel, ws.run_as_uid, tarfile.DIRTYPE, 0o755))
                for name in sorted(filenames):
                    src = os.path.join(dirpath, name)
                    if os.path.islink(src) or not os.path.isfile(src):   # a seed's link may point anywhere
                        continue
                    data = Path(src).read_bytes()
                    info = _tar_info(os.path.normpath(os.path.join(rel, name)), ws.run_as_uid, tarfile.REGTYPE, 0o644)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    count += 1
        container = self._running(ws)
        with _api(ws, "copy the seed in"):
            container.put_archive(ROOT, buf.getvalue())
        return count

    # -- commands ------------------------------------------------------------------------------
    def run_command(self, ws: WorkspaceConfig, command: str, *, timeout: float | None = None,
                    env: dict[str, str] | None = None) -> CommandResult:
        timeout = min(timeout or ws.limits.timeout, ws.limits.timeout)
        container = self._running(ws)
        blocks = str(max(1, ws.limits.file_size // 512))
        env = {**(env or {}), _OWNER_VAR: _owner()}
        done = self._exec(ws, container, _WRAPPER, command, blocks, timeout=timeout, limit=ws.limits.output,
                          env=env, own_group=True)
        out, out_cut = _text(done.out, done.out_total, ws.limits.output)
        err, err_cut = _text(done.err, done.err_total, ws.limits.output)
        reason, code = None, done.code
        if done.timed_out:
            reason, code = "timeout", None
        elif code is not None and code > 128:
            reason, code = _SIGNALS.get(code - 128, f"signal {code - 128}"), None
        elif code is None:
            reason = "killed"
        return CommandResult(exit_code=code, stdout=out, stderr=err, truncated=out_cut or err_cut,
                             timed_out=done.timed_out, killed_reason=reason)

    def _exec(self, ws: WorkspaceConfig, container: Any, script: str, *args: str, timeout: float, limit: int,
              env: dict[str, str] | None = None, own_group: bool = False) -> _Exec:
        """Run the shell ``script`` (``$1``.. = ``args``) in ``container`` as the uid, keeping
        ``limit`` bytes per stream; with ``own_group`` (the wrapper's pid on stderr's first line)
        its process group is killed at the timeout and when it ends.

        The script waits for a line on stdin before it starts: podman (4.3) drops the output a
        process writes before the attach is complete (about 1 exec in 300 under concurrency);
        the line we send proves the attach is live. Its stdin is /dev/null afterwards."""
        _settle(container.id)
        api = client().api
        uid = ws.run_as_uid
        argv = ["/bin/sh", "-c", _HANDSHAKE + script, "agentform", *args]
        with _api(ws, "run in the workspace's container"):
            made = api.exec_create(container.id, argv, stdout=True, stderr=True, stdin=True, user=f"{uid}:{uid}",
                                   workdir=ROOT, environment={k: str(v) for k, v in (env or {}).items()})
            sock = api.exec_start(made["Id"], socket=True)
        raw: socket.socket = getattr(sock, "_sock", sock)
        try:
            raw.sendall(b"\n")
        except OSError:
            pass                                  # it ended already; its output says why
        reader = _Frames(limit, skip_first_err_line=own_group)
        deadline = time.monotonic() + timeout
        timed_out = False
        waiter = selectors.DefaultSelector()
        try:
            raw.setblocking(False)
            waiter.register(raw, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    if timed_out or not own_group:
                        if own_group:
                            self._restart(ws, container)     # the kill did not end it: end everything
                        timed_out = True
                        break
                    timed_out = True
                    if not self._kill_group(ws, container, reader.pid):
                        self._restart(ws, container)
                    deadline = time.monotonic() + _KILL_GRACE
                    continue
                # TLS may hold decrypted bytes the selector cannot see
                if not (getattr(raw, "pending", None) and raw.pending()) and not waiter.select(min(left, 0.5)):
                    continue
                try:
                    chunk = raw.recv(65536)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                reader.feed(chunk)
        finally:
            waiter.close()
            try:
                sock.close()
            finally:
                raw.close()
        code = None if timed_out else self._exit_code(ws, made["Id"])
        if own_group and not timed_out and reader.pid is not None:
            # What the command left running in the background ends with it (as under bubblewrap).
            self._clean_later(ws, container, reader.pid)
        return _Exec(code, bytes(reader.kept[1]), reader.total[1], bytes(reader.kept[2]), reader.total[2],
                     timed_out)

    def _exit_code(self, ws: WorkspaceConfig, exec_id: str) -> int | None:
        api = client().api
        deadline = time.monotonic() + _KILL_GRACE
        with _api(ws, "read a command's exit code"):
            while True:
                info = api.exec_inspect(exec_id)
                if not info.get("Running") or time.monotonic() > deadline:
                    code = info.get("ExitCode")
                    return None if info.get("Running") else code
                time.sleep(0.01)

    def _kill_group(self, ws: WorkspaceConfig, container: Any, pid: int | None) -> bool:
        """SIGKILL to the process group ``pid`` from another exec; False when that exec cannot
        run (the pids limit is full) or the pid is unknown."""
        if pid is None:
            return False
        api = client().api
        uid = ws.run_as_uid
        try:
            made = api.exec_create(container.id, ["/bin/sh", "-c", f"kill -9 -{pid} 2>/dev/null; exit 0"],
                                   user=f"{uid}:{uid}")
            api.exec_start(made["Id"])
            return self._exit_code(ws, made["Id"]) == 0
        except Exception:  # noqa: BLE001 - any failure means "restart instead"
            return False

    def _end_orphans(self, ws: WorkspaceConfig, container: Any) -> None:
        """Kill the commands of engine processes of this host that died (SIGKILL, a crash): unlike
        under bubblewrap, an exec outlives the process that started it. Their processes carry
        the owner in their environment; a live owner's, or another host's, are left alone."""
        found = self._exec(ws, container, _ORPHANS, timeout=OPS_TIMEOUT, limit=1 << 20)
        dead = [pid for pid, owner in (line.split(" ", 1) for line in found.out.decode("utf-8", "replace")
                                       .splitlines() if " " in line)
                if pid.isdigit() and _owner_alive(owner) is False]
        if dead:
            self._exec(ws, container, f"kill -9 {' '.join(dead)} 2>/dev/null; exit 0", timeout=OPS_TIMEOUT,
                       limit=4096)

    def _clean_later(self, ws: WorkspaceConfig, container: Any, pid: int) -> None:
        def clean() -> None:
            if not self._kill_group(ws, container, pid):
                try:
                    self._restart(ws, container)
                except WorkspaceError:
                    pass                    # the next exec reports the engine's state

        worker = threading.Thread(target=clean, name=f"agentform-docker-clean-{pid}")
        with _cleanups_lock:
            _cleanups.setdefault(container.id, []).append(worker)
        worker.start()

    def _restart(self, ws: WorkspaceConfig, container: Any) -> None:
        with _api(ws, "restart the workspace's container"):
            container.restart(timeout=0)

    # -- files ---------------------------------------------------------------------------------
    def _script(self, ws: WorkspaceConfig, script: str, *args: str, limit: int = 1 << 20) -> _Exec:
        container = self._running(ws)
        return self._exec(ws, container, script, *args,
                          timeout=OPS_TIMEOUT, limit=limit)

    def read_file(self, ws: WorkspaceConfig, path: str, *, max_bytes: int) -> bytes:
        rel = _relative(path)
        done = self._script(ws, _READ, rel, str(max_bytes), limit=max_bytes + 1)
        _raise_for(path, done, max_bytes=max_bytes)
        return done.out[:max_bytes]

    def write_file(self, ws: WorkspaceConfig, path: str, data: bytes) -> None:
        if len(data) > ws.limits.file_size:
            raise WorkspaceError(f"'{path}': {len(data)} bytes is more than the workspace's file size "
                                 f"limit ({ws.limits.file_size})")
        rel = _relative(path)
        if not rel:
            raise PathRefused(path, "it names the workspace root, not a file")
        upload = f"{_UPLOAD}{secrets.token_hex(8)}"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = _tar_info(upload, ws.run_as_uid, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        container = self._running(ws)
        with _api(ws, "write the file"):
            container.put_archive(ROOT, buf.getvalue())
        done = self._script(ws, _WRITE, rel, upload)
        _raise_for(path, done)

    def list_files(self, ws: WorkspaceConfig, path: str = ".", *, recursive: bool = False,
                   limit: int = 1000) -> FileListing:
        rel = _relative(path)
        done = self._script(ws, _LIST, rel, "1" if recursive else "0", str(limit + 1), limit=(limit + 2) * 4200)
        _raise_for(path, done)
        lines = done.out.decode("utf-8", "replace").split("\n")
        real = lines[0]
        prefix = "" if real == ROOT else real[len(ROOT) + 1:] + "/"
        entries = []
        for line in lines[1:]:
            entry = _parse_stat(line, prefix)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: e.path)
        return FileListing(tuple(entries[:limit]), truncated=len(entries) > limit)


# -- the scripts (``$1``.. are their arguments; exit codes map to errors in ``_raise_for``) -------

# Resolve "$1" (relative) inside /workspace: sets $real, or exits 3 (leaves) / 4 (missing).
_RESOLVE = f"""
p="{ROOT}/$1"
if [ ! -e "$p" ] && [ ! -L "$p" ]; then exit 4; fi
real=$(readlink -f "$p" 2>/dev/null) || real=""
case "$real" in {ROOT}|{ROOT}/*) ;; *) printf '%s' "$real" >&2; exit 3;; esac
[ -e "$real" ] || exit 4
"""

_READ = _RESOLVE + """
[ -d "$real" ] && exit 5
[ -f "$real" ] || exit 6
n=$(stat -c %h "$real"); [ "$n" -gt 1 ] && { printf '%s' "$n" >&2; exit 7; }
s=$(stat -c %s "$real"); [ "$s" -gt "$2" ] && { printf '%s' "$s" >&2; exit 8; }
exec head -c "$2" "$real"
"""

_WRITE = f"""
up="{ROOT}/$2"
fail() {{ rm -f "$up"; printf '%s' "$2" >&2; exit "$1"; }}
t="{ROOT}/$1"
parent=$(dirname "$t"); name=$(basename "$t")
d="$parent"
while [ ! -e "$d" ] && [ ! -L "$d" ]; do d=$(dirname "$d"); done
r=$(readlink -f "$d" 2>/dev/null) || r=""
case "$r" in {ROOT}|{ROOT}/*) ;; *) fail 3 "$r";; esac
[ -d "$r" ] || fail 9 ""
mkdir -p "$parent" 2>/dev/null || fail 9 ""
rp=$(readlink -f "$parent" 2>/dev/null) || rp=""
case "$rp" in {ROOT}|{ROOT}/*) ;; *) fail 3 "$rp";; esac
if [ -L "$rp/$name" ]; then rm -f "$rp/$name"
elif [ -d "$rp/$name" ]; then fail 5 ""
fi
mv -f "$up" "$rp/$name" || fail 10 "cannot write"
"""

_LIST = _RESOLVE + """
[ -d "$real" ] || exit 9
cd "$real" || exit 4
printf '%s\\n' "$real"
if [ "$2" = 1 ]; then depth=""; else depth="-maxdepth 1"; fi
find . -mindepth 1 $depth ! -name '""" + _UPLOAD + """*' -exec stat -c '%F|%s|%Y|%y|%n' {} + 2>/dev/null | head -n "$3"
"""

# Every process of a command inherits _OWNER_VAR: "<host>:<pid>:<start time>" of the engine
# process that started it. This lists them: "<pid> <owner>" per line.
_OWNER_VAR = "AGENTFORM_EXEC_OWNER"
_ORPHANS = f"""
for d in /proc/[0-9]*; do
  o=$(tr '\\000' '\\n' < "$d/environ" 2>/dev/null | grep '^{_OWNER_VAR}=') || continue
  printf '%s %s\\n' "${{d#/proc/}}" "${{o#{_OWNER_VAR}=}}"
done
"""

_SIGNALS = {9: "killed", 24: "cpu", 25: "file size"}
_KINDS = {"regular file": "file", "regular empty file": "file", "directory": "dir", "symbolic link": "symlink"}


def _start_time(pid: int | str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time('self')}"


def _owner_alive(owner: str) -> bool | None:
    """Whether the engine process ``owner`` still runs (None: another host's, cannot tell)."""
    host, _, rest = owner.strip().partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _start_time(pid) == started


def _settle(container_id: str) -> None:
    """Wait for the cleanups of commands that ran in this container."""
    with _cleanups_lock:
        pending = _cleanups.pop(container_id, [])
    for worker in pending:
        worker.join(OPS_TIMEOUT)


def _raise_for(path: str, done: _Exec, *, max_bytes: int = 0) -> None:
    """The error a file script's exit code means (0: none)."""
    code = done.code
    detail = done.err.decode("utf-8", "replace").strip()
    if code == 0:
        return
    if done.timed_out:
        raise WorkspaceError(f"'{path}': the workspace's container did not answer within {OPS_TIMEOUT:g}s")
    if code == 3:
        raise PathRefused(path, f"it resolves to {detail or 'nowhere'}, outside the workspace" if detail
                          else "a symlink in it leads out of the workspace")
    if code == 4:
        raise FileNotFoundError(f"'{path}' does not exist in the workspace")
    if code == 5:
        raise WorkspaceError(f"'{path}' is a folder" + (": use list_files" if max_bytes else ""))
    if code == 6:
        raise PathRefused(path, "it is not a regular file")
    if code == 7:
        raise PathRefused(path, f"it has {detail} hard links, and another one may be outside the workspace")
    if code == 8:
        raise WorkspaceError(f"'{path}' is {detail} bytes, more than read_file returns ({max_bytes}); read a part "
                             "with run_command (head, sed -n)")
    if code == 9:
        raise WorkspaceError(f"'{path}': a part of it is not a folder")
    raise WorkspaceError(f"'{path}': the workspace's container failed ({code}): {detail[-500:]}")


def _relative(path: str) -> str:
    """``path`` checked as written (not absolute, no leaving '..'), '/'-joined ("" is the root)."""
    return "/".join(check_relative(path))


def _parse_stat(line: str, prefix: str) -> FileEntry | None:
    """One ``%F|%s|%Y|%y|%n`` line (a name with '|' keeps them: the name is last)."""
    parts = line.split("|", 4)
    if len(parts) != 5 or not parts[4].startswith("./"):
        return None
    kind, size, seconds, human, name = parts
    if not size.isdigit() or not seconds.lstrip("-").isdigit():
        return None
    fraction = 0
    clock = human.split(" ")[1] if " " in human else ""
    if "." in clock:
        fraction = int(clock.split(".", 1)[1][:9].ljust(9, "0") or 0)
    return FileEntry(prefix + name[2:], _KINDS.get(kind, "other"), int(size),  # type: ignore[arg-type]
                     int(seconds) * 1_000_000_000 + fraction)


def _tar_info(name: str, uid: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.uid = info.gid = uid
    info.mode = mode
    info.mtime = int(time.time())
    return info


class _Frames:
    """The Docker attach stream's frames (8-byte header: stream, 0, 0, 0, big-endian size),
    each stream kept up to ``limit`` bytes and counted in full."""

    def __init__(self, limit: int, *, skip_first_err_line: bool):
        self.limit = limit
        self.buf = bytearray()
        self.kept = {1: bytearray(), 2: bytearray()}
        self.total = {1: 0, 2: 0}
        self.pid: int | None = None
        self._pid_line: bytearray | None = bytearray() if skip_first_err_line else None

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            size = int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                return
            stream, payload = self.buf[0], bytes(self.buf[8:8 + size])
            del self.buf[:8 + size]
            if stream == 2 and self._pid_line is not None:
                payload = self._take_pid(payload)
            if stream in self.kept and payload:
                self.total[stream] += len(payload)
                kept = self.kept[stream]
                if len(kept) <= self.limit:
                    kept += payload[: self.limit + 1 - len(kept)]

    def _take_pid(self, payload: bytes) -> bytes:
        line = self._pid_line
        assert line is not None
        head, newline, rest = payload.partition(b"\n")
        line += head
        if not newline:
            if len(line) > 32:             # not our line after all: give it back
                self._pid_line = None
                return bytes(line)
            return b""
        self._pid_line = None
        text = bytes(line).strip()
        self.pid = int(text) if text.isdigit() else None
        return rest


def _text(kept: bytes, total: int, limit: int) -> tuple[str, bool]:
    if total <= limit:
        return kept.decode("utf-8", "replace"), False
    return kept[:limit].decode("utf-8", "ignore") + OUTPUT_MARKER.format(dropped=total - limit), True


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip().replace("\n", " ")
    return text[:300]


@contextmanager
def _api(ws: WorkspaceConfig, what: str):
    """The engine's failures as WorkspaceError saying what could not be done, and where."""
    try:
        yield
    except WorkspaceError:
        raise
    except Exception as exc:
        import docker.errors
        import requests

        if isinstance(exc, (docker.errors.DockerException, requests.RequestException, OSError)):
            raise WorkspaceError(f"Workspace {ws.id}: cannot {what} on the Docker engine at {engine_host()}: "
                                 f"{_short(exc)}") from None
        raise
