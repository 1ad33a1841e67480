"""SSE: ``id:`` is the seq; a reconnect with ``Last-Event-ID: N`` (or ``?after=N``) gets exactly
N+1 onwards, then live events, whichever process writes the run; the stream stays open
through ``run.waiting`` and ends after the final event. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import threading

import httpx
from http_helpers import (
    Follower,
    cli,
    doc,
    emitter,
    project,
    read_sse,
    same_as_store,
    stored_stream,
    wait_for,
)


def test_reconnects_at_random_points_of_a_live_1000_event_run_concatenate_to_the_stream(serve_factory, store_url):
    served = serve_factory()
    proc, run_id = emitter(store_url, events=1000, rate=400)   # ~2.5 s of live events
    rng = random.Random(20261129)
    got: list[tuple[int, dict]] = []
    reconnects = 0
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        while True:
            cursor = got[-1][0] if got else 0
            # Alternate the two cursors a client may use: the header (EventSource) and ?after=.
            if reconnects % 2:
                read = read_sse(served.url, run_id, last_event_id=cursor, stop_after=rng.randint(1, 120))
            else:
                read = read_sse(served.url, run_id, after=cursor, stop_after=rng.randint(1, 120))
            assert read.status == 200
            got += read.events
            reconnects += 1
            if read.ended:
                break
    finally:
        assert proc.wait(timeout=60) == 0
    assert reconnects > 10
    assert [seq for seq, _ in got] == list(range(1, 1001))          # none lost, none repeated
    assert [data for _, data in got] == stored_stream(store_url, run_id)   # and exactly the stream
    # A reconnect after the end: 204, which tells an EventSource to stop reconnecting.
    assert read_sse(served.url, run_id, last_event_id=1000).status == 204
    # One uninterrupted follower from the start sees the same stream.
    whole = read_sse(served.url, run_id, after=0)
    assert whole.ended and whole.events == got


def test_many_followers_of_one_run_in_another_process_each_get_the_whole_stream(serve_factory, store_url):
    served = serve_factory()
    proc, run_id = emitter(store_url, events=300, rate=300)
    reads: list = [None] * 20
    starts = [0, 0, 0, 5, 50, 150, 299] + [0] * 13

    def follow(i: int) -> None:
        reads[i] = read_sse(served.url, run_id, after=starts[i])

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(len(reads))]
    for t in threads:
        t.start()
    wait_for(lambda: served.engine.followers() >= 1, "a follower")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    for t in threads:
        t.join(timeout=60)
    assert proc.wait(timeout=60) == 0
    stream = stored_stream(store_url, run_id)
    for i, read in enumerate(reads):
        assert read is not None and read.ended, i
        assert [d for _, d in read.events] == stream[starts[i]:], i
    wait_for(lambda: served.engine.followers() == 0, "followers to leave")


def test_following_a_cli_run_through_an_approval_answered_over_http(serve_factory, store_url, tmp_path):
    """The run executes in a CLI process and parks (run.waiting): the stream stays open, with
    keep-alive comments; the approval is answered over HTTP and the run continues in the server;
    the stream ends."""
    served = serve_factory(ping_s=0.2)
    folder = project(tmp_path / "m", {"worker": [{"content": "prepared", "latency": "300ms"}, {"content": "shipped"}]}, [
        doc("Agent", "worker", {"model": "m"}),
        doc("Pipeline", "p", {"stages": [
            {"name": "prep", "agent": "worker", "input": "prepare"},
            {"name": "ship", "needs": ["prep"], "approval": {"message": "Ship?", "timeout": "1h"}},
            {"name": "after", "agent": "worker", "needs": ["ship"], "input": "go"}]}),
    ])
    assert cli("apply", str(folder), home=served.home, store_url=store_url).returncode == 0
    token = served.engine.token_create(["read", "approve"], name="approver").token
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(
        done=cli("run", "pipeline/p", home=served.home, store_url=store_url)))
    runner.start()
    page = wait_for(lambda: httpx.get(f"{served.url}/api/v1/runs").json()["items"], "the CLI's run to appear")
    run_id = page[0]["id"]
    follower = Follower(served.url, run_id, after=0)
    runner.join(timeout=120)
    assert result["done"].returncode == 3, result["done"].stderr    # parked, waiting for the approval
    wait_for(lambda: any(e["type"] == "run.waiting" for e in stored_stream(store_url, run_id)), "run.waiting")
    wait_for(lambda: any(d["type"] == "run.waiting" for _, d in follower.read.events), "the follower at run.waiting")
    seen, pings = len(follower.read.events), follower.read.comments
    wait_for(lambda: follower.read.comments >= pings + 2, "keep-alive comments while the run waits")
    assert follower.alive() and len(follower.read.events) == seen   # open, idle, kept alive
    answer = httpx.post(f"{served.url}/api/v1/runs/{run_id}/approval", json={"decision": "approve", "message": "ok"},
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 202, answer.text
    stream = same_as_store(follower.finish(), store_url, run_id)
    types = [d["type"] for d in stream]
    assert types.index("run.waiting") < types.index("approval.resolved") < types.index("run.completed")
    resolved = next(d for d in stream if d["type"] == "approval.resolved")
    assert resolved["data"]["approved"] is True and resolved["data"]["by"].startswith("token:")
    assert httpx.get(f"{served.url}/api/v1/runs/{run_id}").json()["status"] == "succeeded"


def test_a_run_started_over_http_is_followed_to_its_end(serve_factory, store_url, tmp_path):
    """SQLite: the server executes it; PostgreSQL: the server's embedded worker does."""
    served = serve_factory()
    folder = project(tmp_path / "m", {"greeter": [{"content": "one two three four five", "stream": "words",
                                                   "latency": "200ms"}]}, [doc("Agent", "greeter", {"model": "m"})])
    served.engine.apply(folder)
    token = served.engine.token_create(["read", "run"]).token
    started = httpx.post(f"{served.url}/api/v1/runs", json={"target": "agent/greeter", "input": "hi"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    stream = same_as_store(read_sse(served.url, started.json()["id"], after=0), store_url, started.json()["id"])
    assert stream[0]["type"] == "run.queued" and stream[-1]["type"] == "run.completed"
    run = httpx.get(f"{served.url}/api/v1/runs/{started.json()['id']}").json()
    assert run["status"] == "succeeded" and run["output"] == "one two three four five"


def test_following_a_run_that_a_worker_process_executes(pg_store_url, tmp_path):
    """PostgreSQL, ``serve --no-worker``: the run is queued over HTTP and an `agentform worker`
    process executes it; the follower gets it live through LISTEN/NOTIFY, to the end."""
    from http_serving import served as serving

    with serving(pg_store_url, tmp_path / "home", worker=False) as served:
        folder = project(tmp_path / "m", {"greeter": [{"content": "a b c d e f", "stream": "words",
                                                       "latency": "300ms"}]}, [doc("Agent", "greeter", {"model": "m"})])
        served.engine.apply(folder)
        token = served.engine.token_create(["read", "run"]).token
        started = httpx.post(f"{served.url}/api/v1/runs", json={"target": "agent/greeter"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        follower = Follower(served.url, run_id, after=0)
        wait_for(lambda: served.engine.followers() == 1, "the follower")
        assert httpx.get(f"{served.url}/api/v1/runs/{run_id}").json()["status"] == "queued"   # nobody took it
        worker = cli("worker", "--once", home=served.home, store_url=pg_store_url)
        assert worker.returncode == 0, worker.stderr
        stream = same_as_store(follower.finish(), pg_store_url, run_id)
        started_event = next(d for d in stream if d["type"] == "run.started")
        assert not started_event["data"]["owner"].endswith(f":{os.getpid()}")   # the worker process ran it
        assert stream[-1]["type"] == "run.completed"
