"""The workspace backend protocol: what every backend (local bubblewrap, docker) offers, typed.

A backend turns a ``WorkspaceConfig`` (one Workspace resource, resolved: the engine home, its
owner, limits in seconds and bytes) into a room and acts in it. The contract:

- ``provision(ws)`` is idempotent and cheap when the room exists: the apply and every process
  that executes a run call it. It copies ``ws.seed`` in at the FIRST provision only (a marker
  says so; a later provision never copies again, even if the seed changed). It raises
  ``WorkspaceError`` naming what is missing (bubblewrap, a Docker engine) with the fix.
- ``run_command`` runs ``command`` (a shell string, ``sh -c``) in the room with the workspace
  as the working directory, under the limits; it never raises for the command's own failure:
  a non-zero exit, a timeout or a kill is a ``CommandResult``. Output is capped at
  ``ws.limits.output`` bytes per stream, with ``OUTPUT_MARKER`` appended when cut.
- ``read_file`` / ``write_file`` / ``list_files`` take paths RELATIVE to the workspace root
  (POSIX, ``/``-separated) and refuse any that leave it (``..``, absolute, a symlink or
  hardlink pointing out) with ``PathRefused``; the message is shown to the model. A path that
  does not exist raises ``FileNotFoundError`` (with the message for the model): the workspace
  tools tell a new file from an existing one by it (``write_file``'s ``created``, the diff).
  ``list_files(recursive=True)`` is also the cheap snapshot (size, mtime) that change
  recording compares before and after a command.
- ``status(ws)`` observes without changing anything; ``teardown(ws, delete_data)`` removes the
  room, and the data only when ``delete_data`` (otherwise it says where the data stays).

Backends are single-host: a room lives on the machine (or Docker engine) that provisioned it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from agentform.engine.errors import PathRefused, WorkspaceBusy, WorkspaceError

if TYPE_CHECKING:
    from agentform.engine.store.base import Condition
    from agentform.specs.workspace import WorkspaceSpec

OUTPUT_MARKER = "\n[... output truncated by agentform: {dropped} more bytes ...]\n"
DEFAULT_TIMEOUT = 60.0                     # seconds, when limits.timeout is not set
DEFAULT_OUTPUT = 64 * 1024                 # bytes kept per stream (stdout, stderr)
DEFAULT_FILE_SIZE = 256 * 1024 * 1024      # RLIMIT_FSIZE / largest file a tool may write
DEFAULT_UID = 65534                        # nobody: what sandboxed commands run as, when root
SEED_MARKER = ".agentform-seeded"          # kept OUTSIDE the data dir by the local backend

__all__ = ["CommandResult", "FileEntry", "FileListing", "PathRefused", "ProvisionResult", "WorkspaceBusy",
           "WorkspaceBackend", "WorkspaceConfig", "WorkspaceError", "WorkspaceLimits", "WorkspaceStatus",
           "backend_for", "cap_output"]


@dataclass(frozen=True, slots=True)
class WorkspaceLimits:
    """Limits in plain units. ``cpus`` is cores (local: RLIMIT_CPU = cpus x timeout)."""

    cpus: float | None = None
    memory: int | None = None             # bytes (local: RLIMIT_AS; docker: mem_limit)
    pids: int | None = None               # processes (local: RLIMIT_NPROC of the sandbox uid)
    timeout: float = DEFAULT_TIMEOUT      # wall clock per command, seconds
    output: int = DEFAULT_OUTPUT          # bytes per stream kept
    file_size: int = DEFAULT_FILE_SIZE    # bytes, largest file written


@dataclass(frozen=True, slots=True)
class WorkspaceConfig:
    """One Workspace resource as a backend needs it; built by ``from_spec``."""

    namespace: str
    name: str
    backend: str                          # "local" | "docker"
    home: Path                            # the engine home (rooms live under home/workspaces)
    owner: str = ""                       # "Team/ns/name" or "Pipeline/ns/name"
    network: Literal["none", "egress"] = "none"
    limits: WorkspaceLimits = field(default_factory=WorkspaceLimits)
    seed: Path | None = None              # absolute folder copied in at first provision
    sandbox: Literal["bubblewrap", "none"] = "bubblewrap"
    image: str | None = None              # docker only
    run_as_uid: int = DEFAULT_UID         # used when the engine runs as root

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def slug(self) -> str:
        """A filesystem- and container-name-safe id: ``<namespace>--<name>`` (both DNS-label names)."""
        return f"{self.namespace}--{self.name}"

    @classmethod
    def from_spec(cls, namespace: str, name: str, spec: WorkspaceSpec, *, home: Path | str,
                  owner: str = "", seed_root: Path | str | None = None,
                  run_as_uid: int | None = None) -> WorkspaceConfig:
        """``seed`` is resolved against ``seed_root`` (the manifest's folder)."""
        lim = spec.limits
        timeout = lim.timeout.seconds if lim.timeout else DEFAULT_TIMEOUT
        seed = None
        if spec.seed:
            seed = Path(spec.seed)
            if not seed.is_absolute() and seed_root is not None:
                seed = Path(seed_root) / seed
        uid = run_as_uid if run_as_uid is not None else int(os.environ.get("AGENTFORM_SANDBOX_UID", DEFAULT_UID))
        return cls(namespace=namespace, name=name, backend=spec.backend, home=Path(home), owner=owner,
                   network=spec.network, image=spec.image, sandbox=spec.sandbox, seed=seed, run_as_uid=uid,
                   limits=WorkspaceLimits(cpus=lim.cpus, memory=lim.memory.bytes if lim.memory else None,
                                          pids=lim.pids, timeout=timeout))


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    path: str                             # what tools and {{ workspace.path }} see
    created: bool                         # the room did not exist before this call
    seeded: int                           # files copied from seed by this call (0 after the first)
    warnings: tuple[str, ...] = ()        # e.g. sandbox: none, a limit not enforced

    def to_dict(self) -> dict:
        return {**asdict(self), "warnings": list(self.warnings)}


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int | None                 # None when killed before exiting
    stdout: str
    stderr: str
    truncated: bool = False               # either stream was cut at limits.output
    timed_out: bool = False
    killed_reason: str | None = None      # "timeout", "memory", "cpu", "pids", "signal N"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.killed_reason is None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str                             # relative to the workspace root, "/"-separated
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mtime_ns: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FileListing:
    entries: tuple[FileEntry, ...]
    truncated: bool = False               # more than ``limit`` entries existed


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    exists: bool
    path: str
    size: int                             # bytes used by the data
    backend: str
    conditions: tuple[Condition, ...] = ()

    def to_dict(self) -> dict:
        return {"exists": self.exists, "path": self.path, "size": self.size, "backend": self.backend,
                "conditions": [asdict(c) for c in self.conditions]}


@runtime_checkable
class WorkspaceBackend(Protocol):
    name: str

    def provision(self, ws: WorkspaceConfig) -> ProvisionResult: ...

    def path(self, ws: WorkspaceConfig) -> str:
        """The workspace root as tools and ToolServer argv see it (host dir; docker: in the container)."""
        ...

    def run_command(self, ws: WorkspaceConfig, command: str, *, timeout: float | None = None,
                    env: dict[str, str] | None = None) -> CommandResult: ...

    def read_file(self, ws: WorkspaceConfig, path: str, *, max_bytes: int) -> bytes:
        """At most ``max_bytes``: WorkspaceError when larger; PathRefused; FileNotFoundError when missing."""
        ...

    def write_file(self, ws: WorkspaceConfig, path: str, data: bytes) -> None:
        """Creates parent folders; replaces atomically (a reader never sees half a file)."""
        ...

    def list_files(self, ws: WorkspaceConfig, path: str = ".", *, recursive: bool = False,
                   limit: int = 1000) -> FileListing: ...

    def status(self, ws: WorkspaceConfig) -> WorkspaceStatus: ...

    def teardown(self, ws: WorkspaceConfig, *, delete_data: bool) -> str:
        """What was done, for the apply's output ("kept data at ...", "deleted ...")."""
        ...


def backend_for(name: str) -> WorkspaceBackend:
    """The backend called ``name``; imported lazily (docker pulls in the docker SDK)."""
    if name == "local":
        from agentform.engine.workspaces.local import LocalBackend

        return LocalBackend()
    if name == "docker":
        from agentform.engine.workspaces.docker import DockerBackend

        return DockerBackend()
    raise WorkspaceError(f"unknown workspace backend '{name}'; valid backends: local, docker")


def cap_output(data: bytes, limit: int) -> tuple[str, bool]:
    """``data`` decoded and cut to ``limit`` bytes with ``OUTPUT_MARKER``; (text, truncated)."""
    if len(data) <= limit:
        return data.decode("utf-8", "replace"), False
    text = data[:limit].decode("utf-8", "ignore")
    return text + OUTPUT_MARKER.format(dropped=len(data) - limit), True
