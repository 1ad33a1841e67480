"""Webhooks (engine/notify.py) against a receiver on 127.0.0.1: signed, retried, recorded, and
never in the run's way. Store-backed tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from agentform import Engine
from tests.pipeline.helpers import HEADER, agentform, write_project

from .receiver import Receiver, verify

KEY = "hook-signing-key-0123456789"
PIPE = {"params": {"topic": {"type": "string"}}, "stages": [
    {"name": "prep", "agent": "worker", "input": "prepare {{ params.topic }}"},
    {"name": "ship", "needs": ["prep"], "approval": {"message": "Ship {{ params.topic }} ({{ stages.prep.output }})?"}},
    {"name": "after", "agent": "worker", "needs": ["ship"], "input": "go"},
], "output": "{{ stages.after.output }}"}
SCRIPT = {"worker": [{"content": "prepared"}, {"content": "shipped"}]}


def _config(home, hooks: list[dict]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(json.dumps({"notify": hooks}))


def _settled(engine: Engine, run_id: str, count: int, timeout: float = 30.0):
    """The run's recorded deliveries once ``count`` of them are no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        found = engine.notifications(run_id)
        if sum(d.status != "pending" for d in found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries of {run_id} not settled: {[d.to_dict() for d in found]}")
        time.sleep(0.02)


async def test_approval_and_end_are_posted_signed_and_retried_after_a_500(tmp_path, store_url, receiver,
                                                                          monkeypatch):
    receiver.codes = [500, 200]
    monkeypatch.setenv("AF_TEST_HOOK_KEY", KEY)
    home = tmp_path / "home"
    _config(home, [{"url": receiver.url, "secret": {"fromEnv": "AF_TEST_HOOK_KEY"}, "backoff": "50ms"}])
    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": PIPE})
    engine = Engine(home, store=store_url)
    try:
        engine.apply(folder)
        parked = await engine.run("pipeline/p", params={"topic": "boats"})
        assert parked.status == "waiting"
        first, second = await asyncio.to_thread(receiver.wait, 2)
        # The same delivery twice: the 500 was retried with the same id and the same bytes.
        assert first.code == 500 and second.code == 200
        assert first.headers["x-agentform-delivery"] == second.headers["x-agentform-delivery"]
        assert first.body == second.body
        assert verify(first, KEY) and verify(second, KEY)
        assert not verify(second, KEY + "x")
        assert second.headers["x-agentform-event"] == "approval.requested"
        body = second.json
        assert body["type"] == "approval.requested" and body["run"]["id"] == parked.id
        assert body["run"]["target"] == "pipeline/default/p"
        assert body["event"]["path"] == "p/ship" and body["event"]["data"]["message"] == "Ship boats (prepared)?"
        [delivery] = _settled(engine, parked.id, 1)
        assert (delivery.status, delivery.attempts, delivery.last_code) == ("delivered", 2, 200)
        assert delivery.event == "approval.requested" and delivery.url == receiver.url

        done = await engine.approve(parked.id, message="ok")
        assert done.status == "succeeded" and done.output == "shipped"
        third = (await asyncio.to_thread(receiver.wait, 3))[2]
        assert verify(third, KEY)
        assert third.json["type"] == "run.completed" and third.json["run"]["status"] == "succeeded"
        assert third.json["event"]["data"]["output"] == "shipped"
        settled = _settled(engine, parked.id, 2)
        assert [(d.event, d.status, d.attempts) for d in settled] == [
            ("approval.requested", "delivered", 2), ("run.completed", "delivered", 1)]
    finally:
        engine.close()
    # run.waiting is not a default event: nothing else was sent.
    assert len(receiver.requests) == 3


async def test_cancelling_a_waiting_run_is_a_runs_end_too(tmp_path, store_url, receiver):
    # The cancel ends the run through a takeover (no stream of an executing process).
    home = tmp_path / "home"
    _config(home, [{"url": receiver.url, "events": ["run.cancelled"]}])
    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": PIPE})
    engine = Engine(home, store=store_url)
    try:
        engine.apply(folder)
        parked = await engine.run("pipeline/p", params={"topic": "boats"})
        assert parked.status == "waiting"
        record, _ = engine.cancel(parked.id)
        assert record.status == "cancelled"
        [request] = await asyncio.to_thread(receiver.wait, 1)
        body = request.json
        assert body["type"] == "run.cancelled" and body["run"]["status"] == "cancelled"
        assert body["event"]["seq"] == engine.get_run(parked.id).last_seq   # the stream's last event
        [delivery] = _settled(engine, parked.id, 1)
        assert (delivery.event, delivery.status) == ("run.cancelled", "delivered")
    finally:
        engine.close()
    assert len(receiver.requests) == 1


async def test_a_pipelines_own_webhook_is_signed_with_its_secret(tmp_path, store_url, receiver, monkeypatch):
    monkeypatch.setenv("AF_TEST_PIPE_KEY", KEY)
    pipe = {"stages": [{"name": "only", "agent": "worker", "input": "x"}],
            "notify": [{"url": receiver.url, "events": ["run.failed"], "secret": {"secretRef": "hook-key"}}]}
    secret = HEADER + "kind: Secret\nmetadata: {name: hook-key}\nspec: {fromEnv: AF_TEST_PIPE_KEY}\n"
    # The script has no turn for the agent: the run fails, and only run.failed is wanted.
    folder = write_project(tmp_path / "m", script={"worker": []}, agents=["worker"], pipelines={"p": pipe},
                           extra=[secret])
    engine = Engine(tmp_path / "home", store=store_url)
    try:
        engine.apply(folder)
        result = await engine.run("pipeline/p")
        assert result.status == "failed"
        [request] = await asyncio.to_thread(receiver.wait, 1)
        assert verify(request, KEY)
        assert request.json["type"] == "run.failed" and request.json["run"]["status"] == "failed"
        assert "worker" in request.json["event"]["data"]["error"]
        [delivery] = _settled(engine, result.id, 1)
        assert delivery.status == "delivered"
        # The key never appears in what was sent or recorded.
        assert KEY not in request.body.decode() and KEY not in json.dumps(delivery.to_dict())
    finally:
        engine.close()
    assert len(receiver.requests) == 1   # run.started, stage events...: not watched


async def test_failing_endpoints_never_touch_the_run_and_are_recorded(tmp_path, store_url, receiver):
    closed = Receiver()
    dead_url = closed.url
    closed.close()   # nothing listens there now: connection refused
    receiver.codes = [404]
    home = tmp_path / "home"
    _config(home, [{"url": dead_url, "maxAttempts": 2, "backoff": "50ms", "timeout": "2s"},
                   {"url": receiver.url, "events": ["run.completed"]}])
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "hi"}]}, agents=["worker"],
                           pipelines={})
    engine = Engine(home, store=store_url)
    try:
        engine.apply(folder)
        result = await engine.run("agent/worker", input="hello")
        assert result.status == "succeeded" and result.output == "hi"
        settled = {d.url: d for d in _settled(engine, result.id, 2)}
        dead, rejected = settled[dead_url], settled[receiver.url]
        assert (dead.status, dead.attempts, dead.last_code) == ("failed", 2, None)
        assert "refused" in dead.last_error.lower()
        # A 404 is not retried: the URL is wrong, trying again will not help.
        assert (rejected.status, rejected.attempts, rejected.last_code) == ("failed", 1, 404)
        assert engine.get_run(result.id).status == "succeeded"
    finally:
        engine.close()


async def test_a_delivery_left_pending_is_sent_by_the_next_process(tmp_path, store_url):
    down = Receiver()
    port = int(down.url.rsplit(":", 1)[1].split("/")[0])
    down.close()
    home = tmp_path / "home"
    _config(home, [{"url": f"http://127.0.0.1:{port}/hook", "backoff": "1s", "maxAttempts": 5}])
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "hi"}]}, agents=["worker"],
                           pipelines={})
    engine = Engine(home, store=store_url)
    try:
        engine.apply(folder)
        result = await engine.run("agent/worker", input="hello")
    finally:
        engine.close()   # waits for the first attempt only
    from agentform.engine.notify import deliveries
    from agentform.engine.store import open_store

    raw = open_store(store_url, home=home)   # a plain store: no webhook dispatcher attached
    try:
        [left] = deliveries(raw, result.id)
    finally:
        raw.close()
    assert (left.status, left.attempts, left.last_code) == ("pending", 1, None)
    up = Receiver(port=port)
    later = Engine(home, store=store_url)
    try:
        assert later.store is not None   # opening the store starts the sweep of what is due
        [request] = await asyncio.to_thread(up.wait, 1)
        assert request.json["run"]["id"] == result.id and request.json["type"] == "run.completed"
        [sent] = _settled(later, result.id, 1)
        assert (sent.status, sent.attempts, sent.last_code) == ("delivered", 2, 200)
    finally:
        later.close()
        up.close()


def test_a_cli_run_sends_before_its_process_exits(tmp_path, receiver):
    home = tmp_path / "home"
    _config(home, [{"url": receiver.url}])
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "hi"}]}, agents=["worker"],
                           pipelines={})
    assert agentform("apply", str(folder), home=home).returncode == 0
    done = agentform("run", "agent/worker", "-i", "hello", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    # No waiting here: the process drained its first attempts before it exited.
    assert [r.json["type"] for r in receiver.requests] == ["run.completed"]
    assert "x-agentform-signature-256" not in receiver.requests[0].headers   # no secret: unsigned


def test_a_wrong_notify_setting_is_a_located_error(tmp_path):
    home = tmp_path / "home"
    _config(home, [{"url": "ftp://example.invalid/x"}])
    done = agentform("runs", home=home)
    assert done.returncode == 1
    assert "config.yaml: notify[0].url must be an http:// or https:// URL" in done.stderr
    assert "Traceback" not in done.stderr
    _config(home, [{"url": "http://127.0.0.1:9/x", "retries": 3}])
    done = agentform("runs", home=home)
    assert done.returncode == 1 and "notify[0].retries is not a setting" in done.stderr


def test_the_payload_is_bounded_and_redacted():
    from agentform.engine.notify import MAX_BODY, MAX_TEXT, payload
    from agentform.engine.redaction import register
    from agentform.engine.store.base import Event, RunRecord

    register("sk-live-0123456789abcdef")
    run = RunRecord(id="r1", target="agent/default/a", status="succeeded", revision=1, created_at=0.0)
    event = Event("r1", 9, 0.0, "run.completed", "", {"output": "sk-live-0123456789abcdef " + "x" * 100_000,
                                                      "items": list(range(1000))})
    body = payload("d1", event, run, 0.0)
    data = json.loads(body)
    assert len(body.encode()) <= MAX_BODY
    assert "sk-live-0123456789abcdef" not in body
    assert len(data["event"]["data"]["output"]) <= MAX_TEXT + 1 and len(data["event"]["data"]["items"]) == 100
    huge = Event("r1", 9, 0.0, "run.completed", "", {f"k{i}": "y" * 4000 for i in range(100)})
    assert json.loads(payload("d1", huge, run, 0.0))["event"]["data"] == {"truncated": True}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # urllib honours *_proxy variables; the receiver is on loopback.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_validate_locates_a_pipelines_bad_webhook(tmp_path):
    def check(hooks: list[dict], wanted: str) -> None:
        pipe = {"stages": [{"name": "only", "agent": "worker", "input": "x"}], "notify": hooks}
        folder = write_project(tmp_path / "m", script={"worker": []}, agents=["worker"], pipelines={"p": pipe})
        done = agentform("validate", str(folder), home=tmp_path / "home")
        assert done.returncode == 1
        lines = (done.stdout + done.stderr).splitlines()
        located = re.compile(r"manifests\.yaml:\d+:\d+: ")
        assert any(located.search(line) and wanted in line for line in lines), lines

    check([{"url": "mailto:ops@example.com"}], "spec.notify[0].url")
    check([{"url": "http://127.0.0.1:9/hook", "secret": {"secretRef": "no-such-key"}}], "no-such-key")
