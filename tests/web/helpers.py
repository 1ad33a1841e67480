"""Helpers of the web view's tests: a manifest folder, a real `agentform serve` process, the CLI
in another process, and a few page reads.

Everything goes through what a user has: manifests on disk, `agentform` processes, the
public ``Engine`` for reading the store back, and a real browser (conftest.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.workers.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]
HEAD = "apiVersion: agentform.dev/v1alpha1\n"
PHONE = {"width": 390, "height": 844}


def manifest(kind: str, name: str, spec: dict[str, Any]) -> str:
    return f"{HEAD}kind: {kind}\nmetadata: {{name: {name}}}\nspec: {json.dumps(spec)}\n"


def write_project(folder: Path, script: dict[str, list[dict[str, Any]]], agents: dict[str, str],
                  others: list[str] = ()) -> Path:
    """A manifest folder: one scripted model playing ``script``, agents (name -> instructions)."""
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    (folder / "scripts" / "script.yaml").write_text(json.dumps({"agents": script}))
    docs = [manifest("Model", "m", {"model": "scripted", "script": "scripts/script.yaml",
                                    "pricing": {"inputPerMTok": 1.0, "outputPerMTok": 2.0}})]
    docs += [manifest("Agent", name, {"model": "m", "instructions": text}) for name, text in agents.items()]
    (folder / "manifests.yaml").write_text("---\n".join(docs + list(others)))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(home: Path, store_url: str, *args: str, **kwargs: Any) -> subprocess.Popen:
    """`agentform --home H --store S ARGS...` in another process."""
    env = {**os.environ, "AGENTFORM_HOME": str(home)}
    return subprocess.Popen([*CLI, "--home", str(home), "--store", store_url, *args], cwd=str(home.parent),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def serve(home: Path, store_url: str, *, auth: bool = True, port: int | None = None) -> Server:
    """A real `agentform serve` (uvicorn, B's create_app with these pages) on a free loopback port."""
    port = port or free_port()
    process = cli(home, store_url, "serve", "--port", str(port), *(["--auth"] if auth else []))
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"agentform serve exited {process.returncode}: {process.stderr.read()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, what=f"agentform serve on {url}")
    return Server(url, process)


def login(page: Any, base: str, token: str, next_path: str = "/") -> None:
    """Log in through the login page's form (the session cookie then serves pages and EventSource)."""
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#token", token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def shown_seqs(page: Any, rows: str = "#events li.ev") -> list[int]:
    """The seqs the run page holds, in order; a folded row of spent chunks holds ``data-seqs="a-b"``."""
    ranges = page.eval_on_selector_all(
        rows, "rows => rows.map(r => (r.dataset.seqs || `${r.dataset.seq}-${r.dataset.seq}`))")
    return [seq for text in ranges for seq in range(int(text.split("-")[0]), int(text.split("-")[1]) + 1)]


def wait_status(page: Any, status: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(f"() => document.getElementById('run').dataset.status === {json.dumps(status)}",
                           timeout=timeout_ms)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Saved under tests/artifacts/ (gitignored) for CI output."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 1000, path
    return path
