"""Helpers of the GitOps tests: a local bare repository as the remote, manifests, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

MODEL = """apiVersion: agentform.dev/v1alpha1
kind: Model
metadata: {name: hello-model}
spec: {model: scripted, script: scripts/hello.yaml}
"""
SCRIPT = """agents:
  greeter:
    - content: "Hello!"
      usage: {input: 4, output: 2}
"""


def agent(name: str, model: str = "hello-model") -> str:
    return f"""apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata: {{name: {name}}}
spec:
  model: {model}
  instructions: You are {name}.
"""


GOOD = {"model.yaml": MODEL, "scripts/hello.yaml": SCRIPT, "greeter.yaml": agent("greeter")}


def git(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd))
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Remote:
    """A bare repository (the remote) and a work tree that pushes commits to its ``main``."""

    def __init__(self, root: Path, name: str = "manifests"):
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        self.bare.mkdir(parents=True)
        git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self.work.mkdir()
        git("init", "-q", "-b", "main", cwd=self.work)
        self.url = self.bare.as_uri()          # file:///...

    def commit(self, files: dict[str, str | None], message: str, under: str = "") -> str:
        """Write (None: delete) ``files`` under ``under``, commit, push to main; the commit id."""
        for name, text in files.items():
            path = self.work / under / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", str(self.bare), "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def cli(*args: str, home: Path, store: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentform.api.cli", "--home", str(home), "--store", store, *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition"):
    """Poll observable state (the store, a process' output) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)   # a poll interval, not a synchronisation: the state decides
        delay = min(delay * 1.5, 0.1)
