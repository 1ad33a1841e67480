"""A Docker-compatible engine for tests: podman's Docker API on a private unix socket.

Nothing here talks to a registry or to a system-wide engine. ``PodmanService`` keeps all of
its state (images, containers, volumes, the socket) under one folder of its own:

- ``containers.conf``: runtime ``runc`` (crun refuses this machine's hybrid cgroup layout),
  ``cgroupfs`` (no systemd here), ``default_ulimits`` no higher than this process's hard
  limits (podman's defaults are higher, and the container then fails to start), a short
  ``exit_command_delay`` (else two conmon processes linger 300 s after every exec);
- ``registries.conf``: no search registries, docker.io blocked: a pull fails at once;
- the service runs from its own run directory (it drops an ``oom`` file in its cwd);
- ``build_base_image`` makes the small test image ``BASE_IMAGE`` from the host's static
  busybox (``busybox-static``) with ``podman import``: a shell, coreutils-like applets,
  ``/etc/passwd`` with ``nobody`` (65534); ``import_rootfs`` imports any other folder.

Use from pytest (a session-scoped fixture, shared by every test that asks for it)::

    # tests/<folder>/conftest.py
    from tests.containers.podman import docker_host, podman  # noqa: F401  (fixtures)

    def test_something(docker_host):          # "unix:///.../podman.sock"; DOCKER_HOST for the SDK
        client = docker.DockerClient(base_url=docker_host)

``podman`` yields the ``PodmanService`` (``.url``, ``.env()``, ``.import_rootfs(...)``,
``.podman(*args)`` for the CLI on the same storage). If podman cannot start, the tests that
use it FAIL with the reason and the service's log (never skip). Outside pytest::

    python -m tests.containers.podman      # starts it, prints DOCKER_HOST=..., stops on Ctrl-C
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_IMAGE = "localhost/agentform-test-base:latest"
_PREFIX = "af-podman-"                     # every service's folder: tempfile.mkdtemp(prefix=_PREFIX)
_PREFIX_DIR = os.path.join(tempfile.gettempdir(), _PREFIX)
START_TIMEOUT = 30.0          # seconds for the socket to answer
_BUSYBOX = ("/usr/bin/busybox", "/bin/busybox")


class PodmanUnavailable(RuntimeError):
    """podman cannot run here; the message says what was tried and what to install."""


class PodmanService:
    """One ``podman system service`` with private storage under ``base``."""

    def __init__(self, base: Path | str):
        self.base = Path(base)
        self.socket_path = self.base / "podman.sock"
        self.url = f"unix://{self.socket_path}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.base / "service.log"

    # -- configuration -----------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("root", "runroot", "tmp", "run"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        nofile = _soft_cap(resource.RLIMIT_NOFILE, 4096)
        nproc = _soft_cap(resource.RLIMIT_NPROC, 4096)
        (self.base / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            "exit_command_delay = 5\n"
            f'tmp_dir = "{self.base / "tmp"}"\n', encoding="utf-8")
        (self.base / "registries.conf").write_text(
            "unqualified-search-registries = []\n"
            "[[registry]]\n"
            'prefix = "docker.io"\n'
            'location = "docker.io"\n'
            "blocked = true\n", encoding="utf-8")

    def _environ(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.base / "containers.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(self.base / "registries.conf")}

    def _global_flags(self) -> list[str]:
        return ["--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
                "--storage-driver", "overlay"]

    def env(self) -> dict[str, str]:
        """What a child process needs to use this engine (``DOCKER_HOST``)."""
        return {"DOCKER_HOST": self.url}

    # -- life --------------------------------------------------------------------------------
    def start(self) -> str:
        """Start the service; returns its DOCKER_HOST url. PodmanUnavailable with the reason."""
        exe = shutil.which("podman")
        if exe is None:
            raise PodmanUnavailable("podman is not installed: apt-get install podman runc busybox-static "
                                    "(make system-deps)")
        if shutil.which("runc") is None:
            raise PodmanUnavailable("runc is not installed (podman needs it here): apt-get install runc")
        # Containers of an earlier session whose storage is gone (its pytest was killed before
        # stopping it) would run forever: end them.
        _kill_containers_of(lambda base: not os.path.isdir(base))
        self._write_config()
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [exe, *self._global_flags(), "system", "service", "--time=0", self.url],
                cwd=self.base / "run", env=self._environ(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PodmanUnavailable(f"podman system service exited with {self.process.returncode}: "
                                        f"{self.log_tail()}")
            if self._answers():
                return self.url
            time.sleep(0.05)
        self.stop()
        raise PodmanUnavailable(f"podman's socket {self.socket_path} did not answer within {START_TIMEOUT:g}s: "
                                f"{self.log_tail()}")

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            try:
                sock.connect(str(self.socket_path))
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b" 200 " in sock.recv(64)
            except OSError:
                return False

    def stop(self) -> None:
        """Remove every container and volume, stop the service, end any container process it
        left (its conmon outlives it), delete the storage."""
        if self.process is not None and self.process.poll() is None:
            for args in (("rm", "--all", "--force", "--time", "0"), ("volume", "rm", "--all", "--force")):
                try:
                    self.podman(*args, timeout=60)
                except (subprocess.SubprocessError, PodmanUnavailable) as exc:
                    self._note(f"stop: podman {' '.join(args)}: {exc}")
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        self._end_leftovers()
        _unmount_under(self.base)        # the overlay driver bind-mounts its own folder
        shutil.rmtree(self.base, ignore_errors=True)

    def _end_leftovers(self) -> None:
        """SIGKILL the first process of every container still running from this storage (a
        container's conmon names the storage in its argv); its PID namespace ends with it. A
        leftover would keep running as uid 65534 and count against that uid's process limit."""
        _kill_containers_of(lambda base: base == str(self.base), conmons_too=True)

    def _note(self, text: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"[harness] {text}\n")
        except OSError:
            pass

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace").strip() or "(empty log)"
        except OSError:
            return "(no log)"

    # -- images ------------------------------------------------------------------------------
    def podman(self, *args: str, timeout: float = 120, input: bytes | None = None) -> str:
        """The podman CLI on this service's storage; PodmanUnavailable with stderr on failure."""
        proc = subprocess.run(["podman", *self._global_flags(), *args], env=self._environ(), input=input,
                              capture_output=True, timeout=timeout, cwd=self.base / "run")
        if proc.returncode != 0:
            raise PodmanUnavailable(f"podman {' '.join(args)} failed ({proc.returncode}): "
                                    f"{proc.stderr.decode('utf-8', 'replace').strip()[-2000:]}")
        return proc.stdout.decode("utf-8", "replace")

    def import_rootfs(self, rootfs: Path | str, tag: str, *, changes: tuple[str, ...] = ()) -> str:
        """``podman import`` of a folder (the image's whole filesystem) as ``tag``; returns the tag."""
        with tempfile.NamedTemporaryFile(suffix=".tar", dir=self.base) as tmp:
            with tarfile.open(tmp.name, "w") as tar:
                tar.add(str(rootfs), arcname=".")
            flags = [f"--change={c}" for c in ("ENV PATH=/usr/local/bin:/usr/bin:/bin", *changes)]
            self.podman("import", *flags, tmp.name, tag)
        return tag

    def build_base_image(self, tag: str = BASE_IMAGE) -> str:
        """The small test image: static busybox and its applets, nobody and nogroup."""
        busybox = next((p for p in _BUSYBOX if os.path.isfile(p)), None)
        if busybox is None:
            raise PodmanUnavailable("busybox is not installed: apt-get install busybox-static")
        with tempfile.TemporaryDirectory(dir=self.base) as rootfs:
            root = Path(rootfs)
            for sub in ("bin", "etc", "tmp", "proc", "sys", "dev", "usr/bin"):
                (root / sub).mkdir(parents=True)
            os.chmod(root / "tmp", 0o1777)
            shutil.copy2(busybox, root / "bin" / "busybox")
            applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
            for name in applets.split():
                if name != "busybox":
                    os.symlink("busybox", root / "bin" / name)
            (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                                 "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
            (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
            return self.import_rootfs(root, tag, changes=('CMD ["/bin/sh"]',))


def _kill_containers_of(chosen, *, conmons_too: bool = False) -> None:
    """SIGKILL the children of every conmon whose storage folder (``<base>/root/...`` after
    ``-b``) is ``chosen(base)``, and with ``conmons_too`` the conmon itself: an exec's conmon
    runs ``podman ... cleanup`` seconds after the exec ended, which would mount and fill the
    storage folder again after ``stop`` deleted it."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            if not argv or not argv[0].endswith("conmon") or "-b" not in argv:
                continue
            bundle = argv[argv.index("-b") + 1]
            base = bundle.split("/root/", 1)[0] if "/root/" in bundle else ""
            if not base.startswith(_PREFIX_DIR) or not chosen(base):
                continue
            children = (entry / "task" / entry.name / "children").read_text().split()
        except (OSError, IndexError):
            continue
        for pid in [*children, *([entry.name] if conmons_too else [])]:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _unmount_under(base: Path) -> None:
    """Unmount (lazily) whatever is still mounted under ``base``, deepest first.

    Not ``podman system reset``: that also deletes the machine's podman networks."""
    prefix = str(base.resolve()).rstrip("/") + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def _soft_cap(which: int, most: int) -> int:
    """``most``, or this process's hard limit when lower (these machines cannot raise limits)."""
    _soft, hard = resource.getrlimit(which)
    return most if hard == resource.RLIM_INFINITY else min(hard, most)


def start_podman(base: Path | str) -> PodmanService:
    """A started service with ``BASE_IMAGE`` built; PodmanUnavailable with the reason."""
    service = PodmanService(base)
    service.start()
    try:
        service.build_base_image()
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> Iterator[PodmanService]:
    """The session's PodmanService (started once, stopped at the end); FAILS when it cannot run."""
    # A short base: the socket path must fit in sun_path (108 bytes).
    base = Path(tempfile.mkdtemp(prefix=_PREFIX))
    try:
        service = start_podman(base)
    except PodmanUnavailable as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"podman's Docker API could not start: {exc}", pytrace=False)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def docker_host(podman: PodmanService) -> str:
    """DOCKER_HOST of the session's podman service (``unix:///.../podman.sock``)."""
    return podman.url


if __name__ == "__main__":
    svc = start_podman(tempfile.mkdtemp(prefix=_PREFIX))
    print(f"DOCKER_HOST={svc.url}  (image {BASE_IMAGE}); Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        svc.stop()
