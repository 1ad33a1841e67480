"""Closing a SQLite store while other threads read (a webhook dispatcher, a follower) ends
their reads with StoreError; it used to close connections under them and crash the process
(SIGSEGV). Run in a child process so that a regression fails this test, not the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import sys, tempfile, threading
    from agentform.engine.errors import StoreError
    from agentform.engine.store import open_store

    ended = []
    for _ in range(30):
        store = open_store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
        reading = [threading.Event() for _ in range(3)]

        def reader(started):
            while True:
                try:
                    store.list_runs(limit=50)
                except StoreError:
                    ended.append(True)
                    return
                started.set()

        threads = [threading.Thread(target=reader, args=(e,)) for e in reading]
        for t in threads:
            t.start()
        for e in reading:   # every reader is mid-loop when the store closes
            assert e.wait(60)
        store.close()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        assert store._all == [], store._all   # in-use readers closed on their way back
    print(len(ended))
""")


def test_closing_a_store_under_reading_threads_ends_their_reads_cleanly(tmp_path):
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "90"
