"""A run's stream written by another process at a set rate, through the engine's real writer.

    python tests/http/emitter.py --store URL --events N --rate PER_SECOND [--wait-go]

Creates a running run owned by this process, prints its id (one line), then (after a line on
stdin with ``--wait-go``) emits ``run.started``, N-2 ``message.delta`` events and
``run.completed`` at about ``rate`` events a second (the pace of a producer, not a
synchronisation), waits until every event is committed, prints ``done`` and exits. The SSE
tests and bench/serve.py follow it over HTTP.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    from agentform.engine.events import EventWriter
    from agentform.engine.ids import new_run_id
    from agentform.engine.runtime.runner import owner_id
    from agentform.engine.store import open_store
    from agentform.engine.store.base import RunRecord

    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--target", default="agent/default/emitter")
    args = parser.parse_args(argv)
    store = open_store(args.store)
    now = time.time()
    run = RunRecord(id=new_run_id(now), target=args.target, status="running", revision=0, created_at=now,
                    owner=owner_id(), heartbeat_at=now, started_at=now)
    store.create_run(run)
    print(run.id, flush=True)
    if args.wait_go:
        sys.stdin.readline()
    stream = EventWriter.for_store(store).open(run.id, 0, None)
    start = time.monotonic()
    stream.emit("run.started", "", {"target": args.target})
    for i in range(1, args.events - 1):
        due = start + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stream.emit("message.delta", "emitter", {"text": f"chunk {i} "})
    stream.emit("run.completed", "", {"output": "done"}, status="succeeded", finished_at=time.time(),
                output="done")
    stream.flush_sync()
    print("done", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
