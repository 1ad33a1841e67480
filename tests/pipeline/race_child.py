"""A racer for tests/pipeline/test_approval_race.py: ``python race_child.py``.

Imports the CLI and the run path, prints ``ready``, then for each line on stdin (a JSON
list of `agentform` arguments; the parent writes the same moment to every racer: the
start gun) runs ``agentform ARGS`` in this process and prints one JSON line: the exit
code and what the command printed. The process lives for all rounds, so a round costs the
command, not a Python start.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    import agentform.api.cli.cmd_pipeline  # noqa: F401 - imported before the gun, not during the race
    import agentform.engine.runtime.pipeline  # noqa: F401
    from agentform.api.cli import main as cli

    reply = sys.stdout
    print("ready", file=reply, flush=True)
    for line in sys.stdin:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli(json.loads(line))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}), file=reply, flush=True)


if __name__ == "__main__":
    main()
