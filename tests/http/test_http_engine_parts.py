"""The engine parts under ``serve``: the followers hub (a follower that falls behind what a feed
keeps catches up from the store), cost groupings, token checks, the rate limiter's arithmetic."""

from __future__ import annotations

import asyncio
import time

import pytest
from http_helpers import doc, project, wait_for

import agentform


async def _next(agen):
    return await asyncio.wait_for(agen.__anext__(), timeout=30)


async def test_a_follower_behind_what_the_feed_keeps_reads_the_store_and_misses_nothing(store_url, tmp_path,
                                                                                        monkeypatch):
    from agentform.engine import followers
    from agentform.engine.events import EventWriter
    from agentform.engine.runtime.runner import owner_id
    from agentform.engine.store.base import RunRecord

    monkeypatch.setattr(followers, "KEEP", 10)   # the feed trims past 20 events
    engine = agentform.Engine(home=tmp_path / "home", store=store_url)
    try:
        now = time.time()
        run = RunRecord(id="run-hub-1", target="agent/default/x", status="running", revision=0, created_at=now,
                        owner=owner_id(), heartbeat_at=now, started_at=now)
        engine.store.create_run(run)
        stream = EventWriter.for_store(engine.store).open(run.id, 0, None)
        for i in range(5):
            stream.emit("message.delta", "x", {"text": str(i)})
        stream.flush_sync()
        fast = engine.event_batches(run.id, 0)
        slow = engine.event_batches(run.id, 0)
        got_fast = [e.seq for e in await _next(fast)]
        got_slow = [e.seq for e in await _next(slow)]
        assert got_fast == got_slow == [1, 2, 3, 4, 5]   # from the store: the feed began after them
        for i in range(95):
            stream.emit("message.delta", "x", {"text": str(i)})
        stream.flush_sync()
        feed = engine._hub()._feeds[run.id]
        await asyncio.to_thread(wait_for, lambda: feed.last == 100, "the feed to read 100 events")
        assert feed.base > 5 and len(feed.events) <= 2 * followers.KEEP   # trimmed past the slow follower
        while got_fast[-1] < 100:
            got_fast += [e.seq for e in await _next(fast)]
        stream.emit("run.completed", "", {}, status="succeeded", finished_at=time.time())
        stream.flush_sync()
        async for batch in fast:
            got_fast += [e.seq for e in batch]
        async for batch in slow:   # resumes behind the feed: pages through the store, then the feed
            got_slow += [e.seq for e in batch]
        assert got_fast == got_slow == list(range(1, 102))
        assert engine.followers() == 0 and run.id not in engine._hub()._feeds
    finally:
        engine.close()


async def test_cost_by_model_agent_team_pipeline_and_target_since(store_url, tmp_path):
    folder = project(tmp_path / "m", {
        "lead": [{"toolCalls": [{"name": "ask_helper", "arguments": {"task": "t"}}], "usage": {"input": 10, "output": 1}},
                 {"content": "done", "usage": {"input": 20, "output": 2}}],
        "helper": [{"content": "helped", "usage": {"input": 100, "output": 10}}] * 2,
    }, [
        doc("Agent", "lead", {"model": "m"}), doc("Agent", "helper", {"model": "m"}),
        doc("Team", "crew", {"manager": "lead", "members": [{"agent": "helper"}]}),
        doc("Pipeline", "line", {"stages": [{"name": "one", "agent": "helper", "input": "go"}]}),
    ])
    with agentform.Engine(home=tmp_path / "home", store=store_url) as engine:
        engine.apply(folder)
        assert (await engine.run("team/crew", input="x")).status == "succeeded"
        assert (await engine.run("pipeline/line")).status == "succeeded"
        by_agent = {r.key: r for r in engine.cost("agent").rows}
        assert {k: (r.tokens_in, r.tokens_out, r.turns, len(r.runs)) for k, r in by_agent.items()} == {
            "helper": (200, 20, 2, 2), "lead": (30, 3, 2, 1)}
        assert engine.cost("model").total.tokens_in == 230
        assert [(r.key, r.tokens_in) for r in engine.cost("team").rows] == [("team/default/crew", 130)]
        assert [(r.key, r.tokens_in) for r in engine.cost("pipeline").rows] == [("pipeline/default/line", 100)]
        assert {r.key for r in engine.cost("target").rows} == {"team/default/crew", "pipeline/default/line"}
        assert engine.cost("model", since="1h").total.tokens_in == 230
        assert engine.cost("model", since=time.time() + 60).rows == []
        assert engine.cost("agent", since="2d").to_dict()["total"]["tokensIn"] == 230
        with pytest.raises(agentform.UsageError, match="use one of"):
            engine.cost("planet")
        with pytest.raises(agentform.UsageError, match="duration"):
            engine.cost("model", since="yesterday")


def test_token_checks(store_url, tmp_path):
    with agentform.Engine(home=tmp_path / "home", store=store_url) as engine:
        made = engine.token_create(["approve", "read", "read"], name="x")
        assert made.info.scopes == ("read", "approve")
        assert engine.token_verify(made.token).id == made.info.id
        prefix, token_id, secret = made.token.split("_", 2)
        forged = f"{prefix}_{token_id}_{'A' * len(secret)}"   # the right id, another secret
        for bad in (forged, made.token + "x", "", "Bearer " + made.token, made.token.upper()):
            assert engine.token_verify(bad) is None, bad
        for scopes, namespace, name, message in ((["root"], None, "", "unknown scope"), ([], None, "", "at least one"),
                                                 (["read"], "Bad_NS", "", "namespace"),
                                                 (["read"], None, "x" * 101, "at most 100")):
            with pytest.raises(agentform.UsageError, match=message):
                engine.token_create(scopes, namespace=namespace, name=name)
        with pytest.raises(agentform.NotFound):
            engine.token_revoke("ffffffffffff")
        first = engine.token_revoke(made.info.id).revoked_at
        assert engine.token_revoke(made.info.id).revoked_at == first   # idempotent
        assert engine.token_verify(made.token) is None


def test_the_rate_limiter_refills_by_the_minute():
    from agentform.api.http.ratelimit import RateLimiter

    limiter = RateLimiter(3)
    assert [limiter.take("a", now=100.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", now=100.0) == 20       # one write back every 20 s
    assert limiter.take("b", now=100.0) is None     # per key
    assert limiter.take("a", now=110.0) == 10
    assert limiter.take("a", now=120.5) is None
    assert limiter.take("a", now=120.5) == 20
    assert RateLimiter(0).take("a") is None         # 0: no limit
