"""Run as a process: take the apply lock of STORE_URL as HOLDER, say "locked", hold until stdin closes."""

import sys

from agentform.engine.store import open_store

store = open_store(sys.argv[1])
with store.apply_lock(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
store.close()
print("released", flush=True)
