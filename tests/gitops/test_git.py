"""`watch --git`: a good commit applies, a bad one does not (the last good stays in force and
the error is recorded and shown), the next good one applies; the loop follows the ref
(real git, a local bare repository as the remote, both stores)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentform.engine.store import open_store
from agentform.specs import ResourceKey

from .helpers import GOOD, Remote, agent, cli, git


def _app(home: Path, store_url: str, name: str) -> dict:
    done = cli("get", "app", name, "-o", "json", home=home, store=store_url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_good_bad_good(tmp_path: Path, store_url: str):
    remote, home = Remote(tmp_path), tmp_path / "home"
    good = remote.commit(GOOD, "good")
    done = cli("watch", "--git", remote.url, "--ref", "main", "--once", home=home, store=store_url)
    assert done.returncode == 0, done.stderr
    assert f"app manifests commit {good[:12]}: applied as revision 1" in done.stdout
    store = open_store(store_url)
    try:
        first = store.latest_revision()
        assert (first.number, first.app, first.git_commit, first.git_dirty) == (1, "manifests", good, False)

        bad = remote.commit({"writer.yaml": agent("writer", model="nope")}, "bad")
        done = cli("watch", "--git", remote.url, "--ref", "main", "--once", home=home, store=store_url)
        assert done.returncode == 1
        assert f"commit {bad[:12]}: not applied, it does not validate; revision 1 in force" in done.stderr
        assert "writer.yaml:5:10: unknown Model 'nope'" in done.stderr     # relative to the repository
        assert store.latest_revision().number == 1
        assert store.get_resource(ResourceKey("Agent", "default", "writer")) is None
        status = _app(home, store_url, "manifests")
        assert (status["phase"], status["syncedCommit"], status["syncedRevision"]) == ("Failed", good, 1)
        assert status["lastError"]["commit"] == bad and "unknown Model 'nope'" in status["lastError"]["message"]
        shown = cli("get", "app", "manifests", home=home, store=store_url)
        assert f"In force:    revision 1, commit {good}" in shown.stdout
        assert f"Last error:  commit {bad}" in shown.stdout and "unknown Model 'nope'" in shown.stdout

        # The last good revision is in force: its agent still runs.
        ran = cli("run", "agent/greeter", "-i", "hi", "--ci", home=home, store=store_url)
        assert ran.returncode == 0, ran.stderr
        assert "Hello!" in ran.stdout

        fixed = remote.commit({"writer.yaml": agent("writer")}, "fixed")
        done = cli("watch", "--git", remote.url, "--ref", "main", "--once", home=home, store=store_url)
        assert done.returncode == 0, done.stderr
        assert f"commit {fixed[:12]}: applied as revision 2" in done.stdout
        assert "agent.agentform.dev/default/writer created" in done.stdout
        latest = store.latest_revision()
        assert (latest.number, latest.git_commit) == (2, fixed)
        assert store.get_resource(ResourceKey("Agent", "default", "writer")) is not None
        status = _app(home, store_url, "manifests")
        assert (status["phase"], status["syncedCommit"], status["syncedRevision"]) == ("Synced", fixed, 2)
        assert status["lastError"]["commit"] == bad      # the last error stays, with its commit and time
    finally:
        store.close()


class _Lines:
    """A process' stdout, one line at a time, read by a thread (so waits have deadlines)."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in proc.stdout], daemon=True).start()

    def next(self, timeout: float = 60.0) -> dict:
        return json.loads(self.lines.get(timeout=timeout))


def test_the_loop_follows_the_ref_and_sighup_fetches_at_once(tmp_path: Path, store_url: str):
    remote, home = Remote(tmp_path), tmp_path / "home"
    good = remote.commit(GOOD, "good")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentform.api.cli", "--home", str(home), "--store", store_url, "watch",
         "--git", remote.url, "--ref", "main", "--interval", "1h", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _Lines(proc)
        first = lines.next()
        assert (first["outcome"], first["commit"], first["revision"]) == ("applied", good, 1)

        bad = remote.commit({"writer.yaml": agent("writer", model="nope")}, "bad")
        proc.send_signal(signal.SIGHUP)      # what a webhook relay would do; the interval is an hour
        second = lines.next()
        assert (second["outcome"], second["commit"], second["inForce"]) == ("invalid", bad, 1)
        assert second["diagnostics"][0]["file"] == "writer.yaml"

        fixed = remote.commit({"writer.yaml": agent("writer")}, "fixed")
        proc.send_signal(signal.SIGHUP)
        third = lines.next()
        assert (third["outcome"], third["commit"], third["revision"]) == ("applied", fixed, 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_subfolder_a_tag_and_prune(tmp_path: Path, store_url: str):
    from agentform import Engine

    remote = Remote(tmp_path, name="platform")
    remote.commit({**GOOD, "writer.yaml": agent("writer")}, "v1", under="deploy/prod")
    git("tag", "v1", cwd=remote.work)
    git("push", "-q", str(remote.bare), "v1", cwd=remote.work)
    remote.commit({"writer.yaml": None}, "writer leaves", under="deploy/prod")
    with Engine(home=tmp_path / "home", store=store_url) as engine:
        first = engine.sync(git=remote.url, ref="v1", subpath="deploy/prod")
        assert (first.app, first.outcome) == ("prod", "applied")     # the folder's name, as apply
        assert engine.store.get_resource(ResourceKey("Agent", "default", "writer")) is not None
        second = engine.sync(git=remote.url, ref="main", subpath="deploy/prod", prune=True)
        assert second.outcome == "applied", second.error
        assert "agent.agentform.dev/default/writer deleted" in second.lines
        assert engine.store.get_resource(ResourceKey("Agent", "default", "writer")) is None
        status = engine.app_status("prod")
        assert (status.ref, status.path, status.synced_revision) == ("main", "deploy/prod", 2)


def test_bad_sources_are_refused_with_a_reason(tmp_path: Path):
    from agentform import Engine
    from agentform.engine.errors import UsageError

    engine = Engine(home=tmp_path / "home", store=f"sqlite:///{tmp_path / 'state.db'}")
    cases = {
        "https://bob:hunter2@example.invalid/r.git": "carries a password",
        "ext::sh -c touch% /tmp/pwned": "transport helpers",
        "ftp://example.invalid/r.git": "scheme 'ftp'",
        str(tmp_path / "missing"): "neither a URL",
    }
    for url, reason in cases.items():
        with pytest.raises(UsageError, match=reason) as caught:
            engine.sync(git=url)
        assert "hunter2" not in str(caught.value)
    remote = Remote(tmp_path)
    for kwargs, reason in (({"ref": "--upload-pack=x"}, "--ref"), ({"ref": "a..b"}, "--ref"),
                           ({"subpath": "../up"}, "--path")):
        with pytest.raises(UsageError, match=reason):
            engine.sync(git=remote.url, **kwargs)
    with pytest.raises(UsageError, match="at least 5s"):
        import asyncio

        asyncio.run(engine.watch(git=remote.url, interval=1))
    engine.close()
    done = cli("watch", "--git", remote.url, "--interval", "1s", home=tmp_path / "h2",
               store=f"sqlite:///{tmp_path / 's2.db'}")
    assert done.returncode == 1 and "--interval 1s: at least 5s" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_path_that_leaves_the_checkout_and_an_oversized_clone_are_errors(tmp_path: Path):
    from agentform.engine.gitops.git import GitError, GitSource

    remote = Remote(tmp_path)
    (remote.work / "deploy").symlink_to(tmp_path)           # a commit points the folder outside
    remote.commit(GOOD, "escape")
    from agentform import Engine

    with Engine(home=tmp_path / "home", store=f"sqlite:///{tmp_path / 'state.db'}") as engine:
        result = engine.sync(git=remote.url, ref="main", subpath="deploy")
        assert result.outcome == "failed" and "resolves outside the repository" in result.error
        assert engine.store.latest_revision() is None
        assert engine.app_status("deploy").error == result.error
    small = GitSource(remote.url, "main", tmp_path / "home2", max_bytes=100)
    with pytest.raises(GitError, match=r"holds [0-9.]+ KiB, more than the 0.1 KiB allowed"):
        small.fetch()
