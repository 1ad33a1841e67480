"""Two applies at once on one store: the second fails at once naming the holder, or waits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agentform.engine.store import open_store

HOLDER = str(Path(__file__).with_name("lock_holder.py"))


def hold_lock(store_url: str, holder: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, HOLDER, store_url, holder], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.stdout.readline().strip() == "released"
    assert proc.wait(timeout=30) == 0


def count_revisions(store_url: str) -> int:
    store = open_store(store_url)
    try:
        return len(store.list_revisions())
    finally:
        store.close()


def test_second_apply_fails_at_once_naming_the_holder(cli, store_url):
    holder = hold_lock(store_url, "ci-job-42@builder")
    try:
        result = cli("apply")
        assert result.code == 1
        assert "lock held by ci-job-42@builder" in result.err
        assert "Traceback" not in result.err
        assert count_revisions(store_url) == 0
    finally:
        release(holder)
    assert cli("apply").code == 0
    assert count_revisions(store_url) == 1


def test_apply_with_lock_timeout_waits_for_the_holder(cli, store_url):
    holder = hold_lock(store_url, "slow-apply")
    waiting = cli.popen("apply", "--lock-timeout", "2m")
    try:
        assert waiting.poll() is None or waiting.returncode == 0
        assert count_revisions(store_url) == 0   # nothing applied while the lock is held
    finally:
        release(holder)
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "revision 1 recorded" in out
    assert count_revisions(store_url) == 1


def test_two_real_applies_race_and_one_revision_results(cli, store_url):
    procs = [cli.popen("apply", "--lock-timeout", "2m") for _ in range(2)]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    results = [(code, out, err) for out, err, code in results]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 0], results
    # whichever came second found the other's revision: exactly one revision, one "no changes"
    assert count_revisions(store_url) == 1
    assert sum("no changes" in out for _, out, _ in results) == 1
