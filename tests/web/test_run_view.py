"""The run page's bound: a stream longer than the page renders shows its tail, and the counters
still start from the whole run's totals (the events before the tail are summed, not drawn)."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from .helpers import manifest, write_project


def _four_stages(folder):
    stages = [{"name": f"s{i}", "agent": "worker", "input": f"step {i}", **({"needs": [f"s{i - 1}"]} if i else {})}
              for i in range(4)]
    script = {f"s{i}/worker": [{"content": f"step {i} done", "usage": {"input": 10 + i, "output": 3 + i}}]
              for i in range(4)}
    return write_project(folder, script, {"worker": "You work."}, [manifest("Pipeline", "four", {"stages": stages})])


def test_a_long_stream_renders_its_tail_with_the_whole_totals(tmp_path, store_url, monkeypatch):
    from agentform import Engine
    from agentform.api.http import web
    from agentform.api.http.app import create_app

    with Engine(home=tmp_path / "home", store=store_url) as engine:
        engine.apply(_four_stages(tmp_path / "repo"))
        result = asyncio.run(engine.run("pipeline/four"))
        assert result.status == "succeeded"
        events = engine.event_page(result.id, after=0, limit=1000)
        assert len(events) > 20
        monkeypatch.setattr(web, "MAX_RENDERED_EVENTS", 10)
        monkeypatch.setattr(web, "EVENT_BATCH", 7)      # the tail crosses pages of the stream

        view = web._read_run(engine, engine.get_run(result.id))
        assert [e["seq"] for e in view.events] == [e.seq for e in events[-10:]]
        assert view.first_seq == events[-10].seq
        early = [e for e in events[:-10] if e.type == "usage"]
        assert view.hidden["tin"] == sum(e.data["tokens_in"] for e in early) > 0
        assert view.hidden["tout"] == sum(e.data["tokens_out"] for e in early)
        assert view.totals["tin"] == result.tokens_in and view.totals["tout"] == result.tokens_out
        assert abs(view.totals["cost"] - result.cost_usd) < 1e-12

        page = TestClient(create_app(engine)).get(f"/runs/{result.id}")
        assert page.status_code == 200
        assert f"Events 1–{view.first_seq - 1} are not shown" in page.text
        assert page.text.count('class="ev ') == 10
        assert f'<span id="run-tin">{result.tokens_in}</span>' in page.text
        assert f'data-hidden-tin="{view.hidden["tin"]}"' in page.text


def test_a_long_streamed_reply_folds_its_spent_chunks(tmp_path, store_url):
    from agentform import Engine
    from agentform.api.http import web

    words = " ".join(f"w{i}" for i in range(300))
    repo = write_project(tmp_path / "repo", {"talker": [{"content": words, "stream": "words"}]},
                         {"talker": "You talk."})
    with Engine(home=tmp_path / "home", store=store_url) as engine:
        engine.apply(repo)
        result = asyncio.run(engine.run("agent/talker", input="go"))
        events = engine.event_page(result.id, after=0, limit=1000)
        assert sum(e.type == "message.delta" for e in events) > 250
        view = web._read_run(engine, engine.get_run(result.id))
        assert len(view.events) < 12 and view.last_seq == events[-1].seq
        shown = [seq for row in view.events for seq in range(row["seq"], row.get("last", row["seq"]) + 1)]
        assert shown == [e.seq for e in events]
        folded = [row for row in view.events if "last" in row]
        assert folded and all(row["spent"] and row["text"] == "" for row in folded)
        assert any(row["type"] == "message.completed" and row["text"] == words for row in view.events)
