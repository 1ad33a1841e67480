"""Two `agentform approve` of one waiting run at the same instant: one continues it, the other
exits 1 naming the winner. Two real processes (tests/pipeline/race_child.py) get each round's
command at the same moment, 20 rounds, on both stores."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import apply, cli_env, run, write_project

CHILD = Path(__file__).with_name("race_child.py")
ROUNDS = 20
PIPE = {"stages": [
    {"name": "prep", "agent": "worker", "input": "prepare"},
    {"name": "side", "agent": "worker", "input": "side work"},
    {"name": "ship", "needs": ["prep"], "approval": {"message": "Ship?", "timeout": "1h"}},
    {"name": "after", "agent": "worker", "needs": ["ship", "side"], "input": "go"},
], "output": "{{ stages.after.output }}"}
# The continuation takes a while, so the loser sees the run continued (not already finished).
SCRIPT = {"worker": [{"content": "prepared"}, {"content": "side done"},
                     {"content": "shipped", "latency": "200ms"}]}


class Racers:
    """Two racer processes over one store; ``race(args)`` gives both the same command at once."""

    def __init__(self, home: Path, store_url: str):
        self.procs = [subprocess.Popen([sys.executable, str(CHILD)], env=cli_env(home, store_url),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True) for _ in range(2)]
        for proc in self.procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()

    def race(self, *args: str) -> list[tuple[int, int, str, str]]:
        """(pid, exit code, stdout, stderr) of each racer."""
        line = json.dumps(list(args)) + "\n"
        for proc in self.procs:   # both wait in readline: these two writes are the start gun
            proc.stdin.write(line)
            proc.stdin.flush()
        results = []
        for proc in self.procs:
            reply = proc.stdout.readline()
            assert reply, proc.stderr.read()
            got = json.loads(reply)
            results.append((proc.pid, got["code"], got["out"], got["err"]))
        return results

    def close(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0, proc.stderr.read()


def test_two_approvals_at_once_continue_the_run_once(store, store_url, tmp_path):
    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": PIPE})
    home = tmp_path / "home"
    apply(store, folder, home)
    parked = [run(store, "pipeline/p", home) for _ in range(ROUNDS)]
    assert {r.status for r in parked} == {"waiting"}
    host = os.uname().nodename
    racing = Racers(home, store_url)
    try:
        for round_, result in enumerate(parked):
            _check_round(store, host, round_, result.id, racing.race("approve", result.id, "-m", "go"))
    finally:
        racing.close()


def _check_round(store, host: str, round_: int, run_id: str, racers: list[tuple[int, int, str, str]]) -> None:
    codes = sorted(code for _, code, _, _ in racers)
    assert codes == [0, 1], (round_, racers)
    (winner_pid, _, out, _), = [r for r in racers if r[1] == 0]
    (_, _, _, lost), = [r for r in racers if r[1] == 1]
    assert out.strip() == "shipped"
    # The loser names the winner, whether it met the continuation under way or (a loser slowed
    # down past the winner's whole continuation) the run already finished.
    assert (f"run {run_id} is already being continued by {host}:{winner_pid}" in lost
            or f"run {run_id} is not waiting for an approval (it is succeeded): the process "
               f"{host}:{winner_pid} continued it" in lost), (round_, lost)
    events = store.read_events(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    types = collections.Counter(e.type for e in events)
    assert types["approval.resolved"] == 1 and types["run.resumed"] == 1 and types["run.completed"] == 1
    completed = collections.Counter(e.path for e in events if e.type == "stage.completed")
    assert completed == {"p/prep": 1, "p/side": 1, "p/ship": 1, "p/after": 1}
    record = store.get_run(run_id)
    assert (record.status, record.output, record.owner, record.owner_epoch) == \
        ("succeeded", "shipped", f"{host}:{winner_pid}", 2)
