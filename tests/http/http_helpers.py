"""Helpers of the HTTP tests: a raw SSE reader, a manifest folder, the CLI in a subprocess, and
a store's stream as the API shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]
HEAD = "apiVersion: agentform.dev/v1alpha1\n"


@dataclass
class SseRead:
    status: int
    events: list[tuple[int, dict]] = field(default_factory=list)   # (id, data) of each event
    ended: bool = False           # the server sent `event: end`
    comments: int = 0             # keep-alive comments seen


def read_sse(url: str, run_id: str, *, last_event_id: int | None = None, after: int | None = None,
             stop_after: int | None = None, headers: dict[str, str] | None = None,
             timeout: float = 60.0, into: SseRead | None = None) -> SseRead:
    """Follow a run's SSE stream, parsing the raw text; disconnect after ``stop_after`` events.
    ``into``: the SseRead to fill as lines arrive (another thread may watch it)."""
    send = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        send["Last-Event-ID"] = str(last_event_id)
    params = {"after": after} if after is not None else None
    with httpx.stream("GET", f"{url}/api/v1/runs/{run_id}/events", headers=send, params=params,
                      timeout=timeout) as response:
        read = into if into is not None else SseRead(0)
        read.status = response.status_code
        if response.status_code != 200:
            response.read()
            return read
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                read.comments += 1
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
                continue
            if not fields:
                continue
            if fields.get("event") == "end":
                read.ended = True
                break
            read.events.append((int(fields["id"]), json.loads(fields["data"])))
            fields = {}
            if stop_after is not None and len(read.events) >= stop_after:
                break
    return read


def stored_stream(store_url: str, run_id: str) -> list[dict]:
    """The run's events as the store holds them, in the API's shape."""
    from agentform.engine.store import open_store

    store = open_store(store_url)
    try:
        return [e.to_dict() for e in store.read_events(run_id)]
    finally:
        store.close()


def doc(kind: str, name: str, spec: dict, namespace: str | None = None) -> str:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps(meta)}\nspec: {json.dumps(spec)}\n"


def project(folder: Path, script: dict, docs: list[str]) -> Path:
    """A manifest folder: a scripted Model ``m`` (in each namespace the docs use) playing ``script``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.yaml").write_text(json.dumps({"agents": script}))
    namespaces = {None} | {json.loads(d.split("metadata: ", 1)[1].split("\n", 1)[0]).get("namespace") for d in docs}
    models = [doc("Model", "m", {"model": "scripted", "script": "script.yaml"}, ns) for ns in namespaces]
    (folder / "all.yaml").write_text("---\n".join(models + docs))
    return folder


def cli(*args: str, home: Path, store_url: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--home", str(home), "--store", store_url, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def wait_for(condition, what: str, timeout: float = 30.0, every: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (a real state), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def emitter(store_url: str, events: int, rate: float) -> tuple[subprocess.Popen, str]:
    """Start tests/http/emitter.py (a run written by another process); (process, run id). It
    emits after a line on its stdin."""
    proc = subprocess.Popen([sys.executable, str(HERE / "emitter.py"), "--store", store_url, "--events",
                             str(events), "--rate", str(rate), "--wait-go"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    run_id = proc.stdout.readline().strip()
    assert run_id, "the emitter printed no run id"
    return proc, run_id


class Follower:
    """``read_sse`` in a thread: a client that stays connected while the test acts."""

    def __init__(self, url: str, run_id: str, **options: Any):
        import threading

        self.read = SseRead(0)   # filled as the stream arrives
        self._done = False
        self._thread = threading.Thread(target=self._follow, args=(url, run_id), kwargs=options, daemon=True)
        self._thread.start()

    def _follow(self, url: str, run_id: str, **options: Any) -> None:
        read_sse(url, run_id, into=self.read, **options)
        self._done = True

    def alive(self) -> bool:
        return self._thread.is_alive()

    def finish(self, timeout: float = 60.0) -> SseRead:
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive() and self._done, "the follower did not finish"
        return self.read


def same_as_store(read: SseRead, store_url: str, run_id: str) -> list[dict]:
    """Assert the follower got the run's whole stream and its end; the stream."""
    stream = stored_stream(store_url, run_id)
    assert read.ended
    assert [data for _, data in read.events] == stream
    return stream
