"""Benchmark: `agentform apply` of 500 resources, first apply and no-op re-apply, as whole processes.

Run as `python bench/reconcile.py` (by `make bench`). For SQLite and PostgreSQL (a fresh
database it creates and drops; `AGENTFORM_TEST_PG`, default postgresql://postgres@127.0.0.1:5432/test)
prints the median wall time of several runs next to the target (no-op re-apply of 500
resources < 2 s). Each first apply gets a fresh store (SQLite file or PostgreSQL schema).
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from validate import manifests  # noqa: E402  (the same realistic mix as the validate bench)

RUNS = 5
GROUPS = 25          # 20 manifests per group
PG_BASE = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _agentform() -> list[str]:
    script = Path(sys.executable).with_name("agentform")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from agentform.api.cli import main; main()"]


def write_repo(folder: Path) -> int:
    """The manifests, with every Secret source present so that apply succeeds."""
    count = 0
    for rel, text in manifests(GROUPS).items():
        text = text.replace("fromFile: /run/secrets/", "fromFile: ../secret-files/")
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        count += text.count("apiVersion:")
    (folder / "secret-files").mkdir()
    for i in range(20):
        (folder / "secret-files" / f"x{i}").write_text("not-a-real-secret\n")
    return count


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system of the process) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def measure(name: str, store_urls: list[str], folder: Path, env: dict[str, str]) -> None:
    cli = _agentform()
    home = folder.parent / f"home-{name}"
    first, noop, first_cpu, noop_cpu = [], [], [], []
    for url in store_urls:
        elapsed, cpu, out = run(cli + ["--home", str(home), "--store", url, "apply", "."], folder, env)
        assert "revision 1 recorded" in out, out[-500:]
        first.append(elapsed)
        first_cpu.append(cpu)
    url = store_urls[0]
    for _ in range(RUNS):
        elapsed, cpu, out = run(cli + ["--home", str(home), "--store", url, "apply", "."], folder, env)
        assert out.strip() == "no changes", out[-500:]
        noop.append(elapsed)
        noop_cpu.append(cpu)
    print(f"{name:<10} first apply:      median {statistics.median(first):.3f} s wall "
          f"(min {min(first):.3f}), {statistics.median(first_cpu):.3f} s CPU, {len(first)} runs")
    print(f"{name:<10} no-op re-apply:   median {statistics.median(noop):.3f} s wall "
          f"(min {min(noop):.3f}), {statistics.median(noop_cpu):.3f} s CPU, {len(noop)} runs  (target < 2 s)")


def postgres_database():
    """Create a fresh database; returns (url, drop function) or (None, None) when unreachable."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        return None, None
    name = f"agentform_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        print(f"postgres   skipped: {PG_BASE} unreachable ({exc})")
        return None, None

    def drop() -> None:
        with psycopg.connect(PG_BASE, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    base = PG_BASE.rsplit("/", 1)[0] + "/" + name
    return base, drop


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="agentform-bench-reconcile-"))
    folder = root / "bench-app"
    env = dict(os.environ, **{f"KEY_{g}": "not-a-real-key" for g in range(GROUPS)})
    env.pop("AGENTFORM_STORE", None)
    try:
        count = write_repo(folder)
        print(f"agentform apply, {count} resources ({GROUPS} groups); {RUNS} runs each; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        subprocess.run(_agentform() + ["--help"], capture_output=True)  # warm the bytecode cache
        measure("sqlite", [f"sqlite:///{root / f'state-{i}.db'}" for i in range(RUNS)], folder, env)
        base, drop = postgres_database()
        if base is not None:
            try:
                urls = [f"{base}?schema=b_{secrets.token_hex(4)}" for _ in range(RUNS)]
                measure("postgres", urls, folder, env)
            finally:
                drop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
