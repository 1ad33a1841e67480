"""``run --detach`` on SQLite: the queued run executes in a background process of its own.

SQLite is one machine's store, with no worker: ``spawn`` starts this module in a new
session (a Ctrl-C in the terminal does not reach it), its output in
``<home>/detached/<run>.log``; the process executes the run like a worker's job does
(``execute.execute_queued``) and exits.

    python -m agentform.engine.workers.detached --home HOME --store URL RUN_ID
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def spawn(store: Any, home: Path, run_id: str) -> int:
    """Start the background process for ``run_id``; its pid."""
    home = Path(home)
    logs = home / "detached"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{run_id}.log", "ab") as log, open("/dev/null", "rb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentform.engine.workers.detached", "--home", str(home.resolve()),
             "--store", store.url, run_id],
            stdin=devnull, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )
    return proc.pid


def main(argv: list[str]) -> int:
    import argparse
    import asyncio

    from agentform.engine.store import open_store

    from .execute import execute_queued

    parser = argparse.ArgumentParser(prog="agentform-detached")
    parser.add_argument("--home", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    # stdout and stderr are the run's log file under the home: nothing raw may reach it.
    from agentform.engine.redaction import redact_std_streams

    redact_std_streams()
    home = Path(args.home)
    from agentform.engine import template_settings

    template_settings.use_home(home)
    store = open_store(args.store, home=home)
    from agentform.engine import notify

    try:
        notify.attach(store, home)   # webhooks of the run's end and approvals
        result = asyncio.run(execute_queued(store, args.run_id, home=home))
    finally:
        notify.detach(store)
        store.close()
    return 0 if result is None else result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
