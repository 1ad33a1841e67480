"""gc's artifacts: a detached run's output file (``run --detach`` on SQLite) goes with the run;
a tool-server log is compacted in place, so a server still appending to it keeps writing right
after the kept part (O_APPEND), with no hole and nothing of the dropped sections."""

from __future__ import annotations

import time

from agentform import Engine
from agentform.engine.retention import compact_log

from .helpers import age, present, project


async def test_a_detached_runs_output_goes_with_it(tmp_path):
    home = tmp_path / "home"
    with Engine(home=home, store=f"sqlite:///{tmp_path / 'state.db'}") as engine:
        engine.apply(project(tmp_path / "m"))
        queued = await engine.enqueue("agent/ok", input="x")
        kept = await engine.enqueue("agent/ok", input="y")
        deadline = time.monotonic() + 60
        while {engine.get_run(r.id).status for r in (queued, kept)} != {"succeeded"}:
            assert time.monotonic() < deadline, "the detached runs did not finish within 60 s"
            time.sleep(0.05)
        output = home / "detached" / f"{queued.id}.log"
        other = home / "detached" / f"{kept.id}.log"
        assert output.is_file() and other.is_file()
        age(engine.store, queued.id, days=40)
        dry = engine.gc("30d", dry_run=True)
        assert dry.artifacts == [str(output)] and output.is_file()
        report = engine.gc("30d")
        assert [r.id for r in report.runs] == [queued.id] and report.artifacts == [str(output)]
        assert not output.exists() and other.is_file()
        assert set(present(engine.store, [queued.id, kept.id])) == {kept.id}


def test_compaction_in_place_while_a_server_appends(tmp_path):
    log = tmp_path / "default-x.log"
    log.write_bytes(b"--- run apply: starting default/x\nprobe line\n"
                    b"--- run aaa: starting default/x\nold 1\nold 2\n"
                    b"--- run bbb: starting default/x\nkept 1\n"
                    b"--- run aaa: restart 1 default/x\nold 3\n"
                    b"--- run ccc: starting default/x\npartial, no newline yet")
    with open(log, "a", encoding="utf-8") as server:   # a server's stderr log stays open, O_APPEND
        assert compact_log(log, {"aaa"}) == 2
        expected = (b"--- run apply: starting default/x\nprobe line\n--- run bbb: starting default/x\nkept 1\n"
                    b"--- run ccc: starting default/x\npartial, no newline yet")
        assert log.read_bytes() == expected
        server.write(" ... now complete\nnext line\n")
        server.flush()
    assert log.read_bytes() == expected + b" ... now complete\nnext line\n"   # no hole, no NUL bytes
    assert compact_log(log, {"aaa"}) == 0 and compact_log(log, {"zzz"}) == 0
    assert compact_log(tmp_path / "missing.log", {"aaa"}) == 0


async def test_a_deleted_runs_webhook_deliveries_go_with_it(tmp_path, store_url):
    from agentform.engine import notify_outbox

    with Engine(home=tmp_path / "home", store=store_url) as engine:
        engine.apply(project(tmp_path / "m"))
        old = (await engine.run("agent/ok", input="x")).id
        new = (await engine.run("agent/ok", input="y")).id
        now = time.time()
        assert notify_outbox.insert(engine.store, [
            (f"d-{run_id}", run_id, 3, "run.completed", "http://127.0.0.1:9/hook", "{}", "{}", 3, now)
            for run_id in (old, new)]) == 2
        age(engine.store, old, days=40)
        assert [r.id for r in engine.gc("30d").runs] == [old]
        assert engine.notifications(old) == []
        assert [(d.run_id, d.event) for d in engine.notifications(new)] == [(new, "run.completed")]
