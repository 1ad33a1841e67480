"""A second process for the store tests: ``python store_child.py COMMAND URL [ARGS]``.

Commands print one line per step, so the parent waits for observable state:
  lock URL HOLDER       take the apply lock, print "locked", release when stdin closes
  lock-die URL HOLDER   take the apply lock, print "locked", then die without releasing
  wait URL RUN          print "ready" (no events yet), wait for events, print their seqs
  open URL              open (migrate) the store, print "opened"
  append URL RUN N      append events 1..N to RUN in batches of 10, print "appended"
  open-lines            print "ready", then open each URL read from stdin (one a line) and
                        print "opened" or "failed <error>"; the parent's line is the start gun
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    from agentform.engine.store import open_store

    if sys.argv[1:] == ["open-lines"]:
        open_lines(open_store)
        return
    command, url, *args = sys.argv[1:]
    store = open_store(url)
    if command == "open":
        print("opened", flush=True)
    elif command in ("lock", "lock-die"):
        with store.apply_lock(args[0], timeout=float(args[1]) if len(args) > 1 else 0.0):
            print("locked", flush=True)
            if command == "lock-die":
                os._exit(0)
            sys.stdin.read()
        print("released", flush=True)
    elif command == "append":
        from agentform.engine.store.base import Event

        run_id, n = args[0], int(args[1])
        for start in range(1, n + 1, 10):
            store.append_events([Event(run_id, s, 0.0, "message.delta", "p", {"s": s})
                                 for s in range(start, min(start + 10, n + 1))], {run_id: {"tokens_in": start}})
        print("appended", flush=True)
    elif command == "wait":
        assert store.read_events(args[0]) == []
        print("ready", flush=True)
        events = store.wait_for_events(args[0], 0, timeout=60)
        print(json.dumps([e.seq for e in events]), flush=True)
    store.close()


def open_lines(open_store) -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            open_store(line.strip()).close()
        except Exception as exc:   # reported to the parent, which fails the test with it
            print("failed", type(exc).__name__, str(exc).replace("\n", " | "), flush=True)
        else:
            print("opened", flush=True)


if __name__ == "__main__":
    main()
