"""The local backend by itself: files confined, commands sandboxed and bounded, output capped.

Real bubblewrap, rlimits and the sandbox uid; PostgreSQL at 127.0.0.1:5432 is what
``network: egress`` reaches and ``network: none`` does not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentform.engine.errors import PathRefused, WorkspaceError
from agentform.engine.workspaces.backend import OUTPUT_MARKER, WorkspaceConfig
from agentform.engine.workspaces.local import LocalBackend
from agentform.specs.workspace import WorkspaceSpec

CONNECT = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 5432), 2); print('connected')\""


def _room(tmp_path: Path, **spec) -> tuple[LocalBackend, WorkspaceConfig]:
    backend = LocalBackend()
    config = WorkspaceConfig.from_spec("default", "bench", WorkspaceSpec.model_validate(spec), home=tmp_path / "home")
    backend.provision(config)
    return backend, config


def test_files_stay_inside_and_symlinks_inside_are_followed(tmp_path):
    backend, ws = _room(tmp_path)
    root = Path(backend.path(ws))
    backend.write_file(ws, "a/b/c.txt", b"deep\n")
    assert (root / "a/b/c.txt").read_bytes() == b"deep\n"
    assert (root / "a/b/c.txt").stat().st_uid == ws.run_as_uid      # the sandbox uid can change it
    os.symlink("a/b", root / "inner")
    assert backend.read_file(ws, "inner/c.txt", max_bytes=100) == b"deep\n"
    assert backend.read_file(ws, "a/x/../b/c.txt", max_bytes=100) == b"deep\n"   # '..' that stays inside
    os.symlink(str(root / "a"), root / "absolute-inside")
    assert backend.read_file(ws, "absolute-inside/b/c.txt", max_bytes=100) == b"deep\n"
    os.symlink("/etc/passwd", root / "out")
    with pytest.raises(PathRefused, match="symlink to /etc/passwd, outside"):
        backend.read_file(ws, "out", max_bytes=100)
    # a write through a symlink that leads out is refused: the file it points to stays as it was
    os.symlink(str(tmp_path / "victim.txt"), root / "trap")
    (tmp_path / "victim.txt").write_text("safe\n")
    with pytest.raises(PathRefused):
        backend.write_file(ws, "trap", b"overwritten")
    assert (tmp_path / "victim.txt").read_text() == "safe\n"
    with pytest.raises(WorkspaceError, match="more than read_file returns"):
        backend.read_file(ws, "a/b/c.txt", max_bytes=2)
    listing = backend.list_files(ws, ".", recursive=True)
    assert {e.path for e in listing.entries} >= {"a", "a/b", "a/b/c.txt", "inner", "out"}
    assert next(e for e in listing.entries if e.path == "inner").kind == "symlink"


def test_commands_run_as_the_sandbox_uid_with_only_the_workspace_writable(tmp_path):
    backend, ws = _room(tmp_path)
    done = backend.run_command(ws, "id -u; pwd; touch made.txt; touch /usr/x 2>&1; touch /x 2>&1; ls /root 2>&1")
    uid, pwd, *rest = done.stdout.splitlines()
    assert uid == str(ws.run_as_uid) and pwd == backend.path(ws)
    assert (Path(backend.path(ws)) / "made.txt").exists()
    assert "Read-only file system" in rest[0]
    assert "No such file" in rest[-1] or "Permission denied" in rest[-1]
    caps = backend.run_command(ws, "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status")
    assert {line.split()[1] for line in caps.stdout.splitlines()} == {"0000000000000000"}


def test_network_none_has_only_its_own_loopback_and_egress_reaches_the_host(tmp_path):
    backend, ws = _room(tmp_path)
    closed = backend.run_command(ws, CONNECT)
    assert closed.exit_code == 1 and "Connection refused" in closed.stderr
    backend, open_ws = _room(tmp_path / "egress", network="egress")
    reached = backend.run_command(open_ws, CONNECT)
    assert reached.exit_code == 0 and reached.stdout == "connected\n", reached.stderr


def test_output_is_capped_with_a_marker_and_cpu_time_is_bounded(tmp_path):
    backend, ws = _room(tmp_path, limits={"cpus": 0.5, "timeout": "4s"})
    loud = backend.run_command(ws, "head -c 200000 /dev/zero | tr '\\0' 'y'")
    assert loud.truncated and len(loud.stdout) < 70_000
    assert loud.stdout.endswith(OUTPUT_MARKER.format(dropped=200000 - 65536))
    spin = backend.run_command(ws, "python3 -c 'while True: pass'")
    # 0.5 cores x 4 s = 2 s of CPU, then SIGXCPU (or the wall clock on a busy machine)
    assert spin.exit_code != 0 and (spin.killed_reason == "cpu" or spin.timed_out), spin
    fast = backend.run_command(ws, "echo fine")
    assert fast.ok and fast.stdout == "fine\n"


def test_a_file_larger_than_the_size_limit_is_cut_by_the_kernel(tmp_path):
    backend, ws = _room(tmp_path)
    from dataclasses import replace

    small = replace(ws, limits=replace(ws.limits, file_size=1000))
    done = backend.run_command(small, "head -c 5000 /dev/zero > big.bin")
    assert done.killed_reason == "file size" and (Path(backend.path(ws)) / "big.bin").stat().st_size == 1000
    with pytest.raises(WorkspaceError, match="file size limit"):
        backend.write_file(small, "too-big.bin", b"x" * 2000)
