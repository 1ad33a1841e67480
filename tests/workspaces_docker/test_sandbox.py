"""The docker backend's room holds: no network, read-only root, no privileges, limits that
kill, a timeout that ends every process of the command, other workspaces out of reach.

Real containers under podman's Docker API; each result is checked from inside the container.
"""

from __future__ import annotations

import socket

import pytest

from agentform.engine.errors import PathRefused
from agentform.engine.workspaces.backend import OUTPUT_MARKER, WorkspaceLimits
from agentform.engine.workspaces.docker import resource_name


def _processes(rooms, ws) -> list[str]:
    listing = rooms.sh(ws, "ps -o pid,user,args")
    assert listing.ok, listing
    return [line for line in listing.stdout.splitlines()[1:] if "ps -o" not in line]


def test_no_network_not_even_the_hosts_postgresql(rooms):
    with socket.create_connection(("127.0.0.1", 5432), timeout=5):
        pass                                        # the host reaches it: the test can fail
    ws = rooms.make()
    probe = rooms.sh(ws, "nc -w 3 127.0.0.1 5432 </dev/null; echo rc=$?; nc -w 3 10.0.2.2 80 </dev/null; "
                         "echo rc=$?; cat /proc/net/dev")
    assert probe.stdout.startswith("rc=1\nrc=1\n")
    assert "Connection refused" in probe.stderr and "unreachable" in probe.stderr
    devices = [line.split(":")[0].strip() for line in probe.stdout.splitlines() if ":" in line]
    assert devices == ["lo"]                        # no interface but loopback
    assert rooms.container(ws).attrs["HostConfig"]["NetworkMode"] == "none"


def test_root_is_read_only_only_the_workspace_and_tmp_are_writable(rooms):
    ws = rooms.make()
    out = rooms.sh(ws, "for p in /etc/x /usr/x /bin/x /x; do echo hi > $p 2>/dev/null && echo WROTE $p; done; "
                       "echo w > /workspace/w && echo ok-workspace; echo t > /tmp/t && echo ok-tmp")
    assert "WROTE" not in out.stdout
    assert "ok-workspace" in out.stdout and "ok-tmp" in out.stdout
    assert rooms.container(ws).attrs["HostConfig"]["ReadonlyRootfs"] is True


def test_commands_run_unprivileged_without_capabilities(rooms):
    ws = rooms.make()
    out = rooms.sh(ws, "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status")
    lines = out.stdout.split()
    assert lines[0] == "65534"
    status = dict(zip(lines[1::2], lines[2::2], strict=True))
    assert int(status["CapEff:"], 16) == 0 and int(status["CapBnd:"], 16) == 0
    assert status["NoNewPrivs:"] == "1"


def test_a_memory_hog_is_killed_and_the_room_still_works(rooms):
    ws = rooms.make(limits=WorkspaceLimits(memory=64 * 1024 * 1024, timeout=30))
    hog = rooms.sh(ws, "dd if=/dev/zero of=/dev/null bs=256M count=1")
    assert hog.exit_code is None and hog.killed_reason == "killed"       # SIGKILL from the OOM killer
    inside = rooms.sh(ws, "dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; echo rc=$?")
    assert inside.stdout == "rc=137\n"
    small = rooms.sh(ws, "dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo fine")
    assert small.ok and small.stdout.strip() == "fine"     # the limit, not a broken room
    assert rooms.container(ws).attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024


def test_a_process_storm_is_bounded_by_pids_and_leaves_nothing_behind(rooms):
    ws = rooms.make(limits=WorkspaceLimits(pids=24, timeout=20))
    storm = rooms.sh(ws, "i=0; while [ $i -lt 300 ]; do sleep 300 & i=$((i+1)); done; echo started $i")
    assert "started 300" not in storm.stdout
    assert "fork" in storm.stderr or "Resource temporarily unavailable" in storm.stderr
    assert not [p for p in _processes(rooms, ws) if "sleep" in p]   # its leftovers were killed
    assert rooms.sh(ws, "echo next").stdout == "next\n"


def test_a_command_past_its_timeout_is_killed_with_everything_it_started(rooms):
    ws = rooms.make(limits=WorkspaceLimits(timeout=2))
    slow = rooms.sh(ws, "sleep 400 & sleep 401; echo finished")
    assert slow.timed_out and slow.killed_reason == "timeout" and slow.exit_code is None
    assert "finished" not in slow.stdout
    assert not [p for p in _processes(rooms, ws) if "sleep" in p]


def test_cpu_limit_throttles_a_busy_loop(rooms):
    ws = rooms.make(limits=WorkspaceLimits(cpus=0.2, timeout=20))
    assert rooms.container(ws).attrs["HostConfig"]["NanoCpus"] == 200_000_000
    # The container's own cgroup (v1 here) says how often the kernel held it back.
    busy = rooms.sh(ws, "cd /sys/fs/cgroup/cpu; cat cpu.cfs_quota_us cpu.cfs_period_us; "
                        "grep nr_throttled cpu.stat; timeout 2 sh -c 'while :; do :; done'; grep nr_throttled cpu.stat")
    quota, period, before, after = busy.stdout.split("\n")[:4]
    assert int(quota) / int(period) == pytest.approx(0.2)
    assert int(after.split()[1]) > int(before.split()[1])


def test_output_is_capped_with_a_marker(rooms):
    ws = rooms.make(limits=WorkspaceLimits(timeout=20, output=1000))
    out = rooms.sh(ws, "head -c 50000 /dev/zero | tr '\\0' a")
    assert out.truncated and out.stdout.startswith("a" * 1000)
    assert out.stdout[1000:] == OUTPUT_MARKER.format(dropped=49000)


def test_another_workspaces_volume_is_out_of_reach(rooms):
    mine, theirs = rooms.make("mine"), rooms.make("theirs")
    rooms.backend.write_file(theirs, "secret.txt", b"CANARY-7d1f\n")
    probe = rooms.sh(mine, "cat /proc/mounts; grep -rs CANARY-7d1f / --exclude-dir=proc --exclude-dir=sys "
                           "&& echo FOUND; ls /workspace")
    assert "FOUND" not in probe.stdout and "CANARY" not in probe.stdout
    assert resource_name(theirs) not in probe.stdout
    for path in ("../theirs/secret.txt", "/workspace/../theirs/secret.txt"):
        with pytest.raises(PathRefused):
            rooms.backend.read_file(mine, path, max_bytes=100)
    assert rooms.backend.read_file(theirs, "secret.txt", max_bytes=100) == b"CANARY-7d1f\n"


def test_file_tools_refuse_links_that_leave_and_follow_links_that_stay(rooms):
    ws = rooms.make()
    rooms.backend.write_file(ws, "docs/a.txt", b"inside\n")
    rooms.backend.write_file(ws, "b.txt", b"linked twice\n")
    made = rooms.sh(ws, "ln -s /etc/passwd out; ln -s docs inner; ln -s / rootlink; ln b.txt twice")
    assert made.ok, made
    for path, why in (("out", "outside the workspace"), ("rootlink/etc/passwd", "outside the workspace"),
                      ("twice", "hard links"), ("../../etc/passwd", "'..'"), ("/etc/passwd", "absolute")):
        with pytest.raises(PathRefused, match=why):
            rooms.backend.read_file(ws, path, max_bytes=1000)
    with pytest.raises(PathRefused):
        rooms.backend.write_file(ws, "rootlink/tmp/x", b"no")
    with pytest.raises(PathRefused):
        rooms.backend.list_files(ws, "rootlink")
    assert rooms.backend.read_file(ws, "inner/a.txt", max_bytes=100) == b"inside\n"
    # writing over a symlink replaces the link, never what it points to
    rooms.backend.write_file(ws, "out", b"plain\n")
    assert rooms.sh(ws, "[ -L out ] || cat out").stdout == "plain\n"
    assert "root:" in rooms.sh(ws, "head -1 /etc/passwd").stdout


def test_list_files_reports_kinds_sizes_and_nanosecond_mtimes(rooms):
    ws = rooms.make()
    rooms.backend.write_file(ws, "a/b/c.txt", b"12345")
    rooms.sh(ws, "ln -s a/b link; touch a/fresh")
    flat = rooms.backend.list_files(ws, ".")
    assert [(e.path, e.kind) for e in flat.entries] == [("a", "dir"), ("link", "symlink")]
    deep = {e.path: e for e in rooms.backend.list_files(ws, "a", recursive=True).entries}
    assert set(deep) == {"a/b", "a/b/c.txt", "a/fresh"}
    assert deep["a/b/c.txt"].kind == "file" and deep["a/b/c.txt"].size == 5
    assert deep["a/fresh"].mtime_ns % 1_000_000_000 != 0      # touch's time has its nanoseconds
    capped = rooms.backend.list_files(ws, ".", recursive=True, limit=2)
    assert capped.truncated and len(capped.entries) == 2


def test_concurrent_commands_and_reads_in_several_rooms_lose_no_output(rooms):
    """Tools of parallel agents call the backend from several threads at once; podman drops
    the output of an exec that writes before its attach is complete, unless the exec waits
    for the engine's line on stdin (the handshake)."""
    from concurrent.futures import ThreadPoolExecutor

    spaces = [rooms.make(f"busy-{i}") for i in range(3)]
    for ws in spaces:
        rooms.backend.write_file(ws, "id.txt", ws.name.encode())

    def work(ws) -> list[str]:
        wrong = []
        for i in range(25):
            out = rooms.sh(ws, f"echo {ws.name}-{i}")
            if out.stdout != f"{ws.name}-{i}\n":
                wrong.append(repr(out))
            if rooms.backend.read_file(ws, "id.txt", max_bytes=100) != ws.name.encode():
                wrong.append("read_file")
        return wrong

    with ThreadPoolExecutor(len(spaces)) as pool:
        wrong = [w for found in pool.map(work, spaces) for w in found]
    assert wrong == []
