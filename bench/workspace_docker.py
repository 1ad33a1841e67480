"""Benchmark: what the docker workspace backend costs, against podman's Docker API.

    python bench/workspace_docker.py [-n 30] [--json]

Starts a private podman service (tests/containers/podman.py: no registry, a busybox image
built locally), then prints medians and p90 (ms) of:
- ``first provision``: image check, volume, the chown helper, container created and started;
- ``provision again``: the idempotent call every run makes;
- ``run_command true``: an exec (the wrapper shell) plus the exec that kills what it left;
- ``write_file`` (1 KiB: an archive upload and a rename script), ``read_file``,
  ``list_files recursive`` over 50 files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"median_ms": round(statistics.median(samples) * 1000, 2),
            "p90_ms": round(samples[max(0, int(len(samples) * 0.9) - 1)] * 1000, 2), "n": len(samples)}


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import os

    from tests.containers.podman import BASE_IMAGE, start_podman

    service = start_podman(tempfile.mkdtemp(prefix="af-podman-"))
    os.environ["DOCKER_HOST"] = service.url
    try:
        from agentform.engine.workspaces.backend import WorkspaceConfig, WorkspaceLimits
        from agentform.engine.workspaces.docker import DockerBackend

        home = Path(tempfile.mkdtemp(prefix="af-bench-"))
        backend = DockerBackend()
        first = []
        for i in range(min(args.n, 5)):
            ws = WorkspaceConfig("default", f"cold-{i}", "docker", home, image=BASE_IMAGE,
                                 limits=WorkspaceLimits(cpus=1, memory=128 * 2**20, pids=64, timeout=30))
            start = time.perf_counter()
            backend.provision(ws)
            first.append(time.perf_counter() - start)
            if i:
                backend.teardown(ws, delete_data=True)
        ws = WorkspaceConfig("default", "cold-0", "docker", home, image=BASE_IMAGE,
                             limits=WorkspaceLimits(cpus=1, memory=128 * 2**20, pids=64, timeout=30))
        for i in range(50):
            backend.write_file(ws, f"tree/d{i % 5}/f{i}.txt", b"x" * 100)
        payload = b"y" * 1024
        figures = {
            "first provision": _stats(first),
            "provision again": _stats(_timed(lambda: backend.provision(ws), args.n)),
            "run_command true": _stats(_timed(lambda: backend.run_command(ws, "true"), args.n)),
            "write_file 1 KiB": _stats(_timed(lambda: backend.write_file(ws, "bench.txt", payload), args.n)),
            "read_file 1 KiB": _stats(_timed(lambda: backend.read_file(ws, "bench.txt", max_bytes=4096), args.n)),
            "list_files recursive (50 files)": _stats(
                _timed(lambda: backend.list_files(ws, ".", recursive=True), args.n)),
        }
        backend.teardown(ws, delete_data=True)
    finally:
        service.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for name, row in figures.items():
        print(f"{name:34s} median {row['median_ms']:8.2f} ms   p90 {row['p90_ms']:8.2f} ms   (n={row['n']})")


if __name__ == "__main__":
    main()
