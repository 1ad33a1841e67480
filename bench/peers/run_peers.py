"""Run the 11-agent workload on LangGraph and the OpenAI Agents SDK, each in its own pinned venv.

    python bench/peers/run_peers.py [--json] [--skip-setup] [--peer NAME]

Standard library only, so that any Python 3.11 can call it (bench/runtime.py does, from
agentform's venv). The peers cannot share agentform's venv: openai-agents needs openai>=3,
litellm openai<3. Each peer's venv lives in bench/.peers/<peer> (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".peers"
SETUP_TIMEOUT_S = 900
WORKLOAD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Peer:
    """A peer framework: its pinned requirements and its workload script."""

    name: str
    requirements: str
    workload: str

    @property
    def venv(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


PEERS = [
    Peer("langgraph", "requirements-langgraph.txt", "langgraph_workload.py"),
    Peer("openai_agents", "requirements-openai-agents.txt", "openai_agents_workload.py"),
]

FIGURES = [  # (key, column heading)
    ("version", "version"),
    ("overhead_ms_per_invocation", "ms/invocation"),
    ("latency100_ms", "100ms-latency run (ideal 500)"),
    ("concurrent_runs_per_s", "runs/s (200 concurrent)"),
    ("concurrent_peak_rss_mb", "peak RSS MB"),
    ("import_s", "import s"),
]


class PeerError(Exception):
    """A peer could not be set up or measured; reported as that peer's `error`."""


def _clean_env() -> dict[str, str]:
    """The environment for a peer's processes, without traces of the caller's venv."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env()
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{Path(cmd[0]).name} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise PeerError(f"cannot start {cmd[0]}: {exc}") from exc
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.splitlines() if "is ignored" not in ln][-5:]
        raise PeerError(f"{' '.join(cmd[:3])} exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def setup(peer: Peer, skip: bool) -> None:
    """Create the peer's venv and install its pinned requirements, unless already done."""
    req = HERE / peer.requirements
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    stamp = peer.venv / ".installed-requirements.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest and peer.python.exists():
        return
    if skip:
        raise PeerError(f"{peer.venv} is missing or stale; run without --skip-setup")
    if not peer.python.exists():
        _run([sys.executable, "-m", "venv", str(peer.venv)], SETUP_TIMEOUT_S)
    _run([str(peer.python), "-m", "pip", "install", "-q", "-r", str(req)], SETUP_TIMEOUT_S)
    stamp.write_text(digest + "\n")


def measure(peer: Peer, skip_setup: bool, concurrent_reps: int) -> dict:
    """Set up and run one peer's workload; failures become {"error": ...}."""
    try:
        setup(peer, skip_setup)
        cmd = [
            str(peer.python),
            str(HERE / peer.workload),
            "all",
            "--concurrent-reps",
            str(concurrent_reps),
        ]
        out = _run(cmd, WORKLOAD_TIMEOUT_S)
        lines = out.strip().splitlines()
        if not lines:
            raise PeerError(f"{peer.workload} printed nothing")
        return json.loads(lines[-1])
    except (PeerError, OSError, json.JSONDecodeError) as exc:
        return {"error": str(exc)}


def table(results: dict[str, dict]) -> str:
    """The figures as a plain text table, one row per peer."""
    heads = ["peer"] + [h for _, h in FIGURES]
    rows, errors = [], []
    for name, res in results.items():
        if "error" in res:
            rows.append([name, "error (below)"] + [""] * (len(FIGURES) - 1))
            errors.append(f"{name}: {res['error']}")
        else:
            rows.append([name] + [str(res.get(k, "")) for k, _ in FIGURES])
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([fmt(heads), fmt(["-" * w for w in widths]), *map(fmt, rows), *errors])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skip-setup", action="store_true", help="use the venvs as they are")
    parser.add_argument(
        "--peer",
        action="append",
        choices=[p.name for p in PEERS],
        help="only this peer (repeatable)",
    )
    parser.add_argument(
        "--concurrent-reps",
        type=int,
        default=5,
        help="fresh processes for the 200-concurrent-runs figure (median)",
    )
    args = parser.parse_args(argv)
    if args.concurrent_reps < 1:
        parser.error("--concurrent-reps must be at least 1")
    chosen = [p for p in PEERS if not args.peer or p.name in args.peer]
    results = {p.name: measure(p, args.skip_setup, args.concurrent_reps) for p in chosen}
    print(json.dumps(results) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
