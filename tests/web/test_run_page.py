"""The run page in a real browser: it follows a run live while another process executes it, a
reload mid-run continues where it was without losing or repeating an event, two tabs follow
the same run, and an approval is answered through the page."""

from __future__ import annotations

from tests.workers.helpers import wait_until

from .helpers import (
    cli,
    login,
    manifest,
    screenshot,
    shown_seqs,
    wait_status,
    write_project,
)

WORDS = "the quick brown fox jumps over the lazy dog and keeps running through the field"
STAGES = ["s1", "s2", "crew", "s3", "s4", "s5"]


def _slow_project(folder, latency: str = "400ms"):
    """A pipeline of six stages, about 0.4 s each, words streamed; one stage is a team whose lead
    asks two members in one turn (tool calls, results, a nested tree)."""
    turn = {"content": WORDS, "latency": latency, "stream": "words", "usage": {"input": 100, "output": 20}}
    script = {f"{s}/worker": [turn] for s in STAGES if s != "crew"}
    script["lead"] = [
        {"toolCalls": [{"name": "ask_a1", "arguments": {"task": "first half"}},
                       {"name": "ask_a2", "arguments": {"task": "second half"}}],
         "latency": "300ms", "usage": {"input": 50, "output": 10}},
        {"content": "both halves done", "latency": "200ms", "usage": {"input": 70, "output": 5}},
    ]
    script["a1"] = [{"content": "half one", "latency": "300ms", "usage": {"input": 30, "output": 4}}]
    script["a2"] = [{"content": "half two", "latency": "350ms", "usage": {"input": 30, "output": 4}}]
    team = manifest("Team", "crew", {"manager": "lead", "mode": "orchestrate",
                                     "members": [{"agent": "a1"}, {"agent": "a2"}]})
    stages, previous = [], None
    for name in STAGES:
        stage = {"name": name, "input": f"do {name}", **({"needs": [previous]} if previous else {})}
        stage.update({"team": "crew"} if name == "crew" else {"agent": "worker"})
        stages.append(stage)
        previous = name
    pipeline = manifest("Pipeline", "slow", {"stages": stages})
    agents = {"worker": "You work.", "lead": "You lead.", "a1": "You do half.", "a2": "You do the other half."}
    return write_project(folder, script, agents, [team, pipeline])


def _running_run(engine, target_prefix: str):
    page = engine.runs(namespace=None, limit=5)
    return next((r for r in page.items if r.target.startswith(target_prefix)), None)


def test_live_run_reload_and_two_tabs(browser, served, tmp_path):
    engine = served.engine
    engine.apply(_slow_project(tmp_path / "repo"))
    server = served.start()
    runner = cli(served.home, served.store_url, "run", "pipeline/slow")
    try:
        def started():
            assert runner.poll() is None, runner.stderr.read()
            return _running_run(engine, "pipeline/default/slow")

        run = wait_until(started, what="the run to be recorded")
        wait_until(lambda: engine.get_run(run.id).last_seq >= 3, what="the run's first events")
        context = browser.new_context()
        first = context.new_page()
        errors: list[str] = []
        first.on("pageerror", lambda exc: errors.append(str(exc)))
        login(first, server.url, served.read_token, next_path=f"/runs/{run.id}")
        rendered = len(shown_seqs(first))
        assert rendered >= 3
        # live: rows arrive without a reload while the other process executes the run
        first.wait_for_function("() => document.querySelectorAll('#events li.ev.live').length > 0", timeout=20_000)
        first.wait_for_selector("#live[data-state=live]")
        second = context.new_page()
        second.on("pageerror", lambda exc: errors.append(str(exc)))
        second.goto(f"{server.url}/runs/{run.id}")
        # a reload in the middle of the run: the record says running, and more is to come
        first.wait_for_function("() => document.querySelectorAll('#events li.ev').length > 15", timeout=20_000)
        assert engine.get_run(run.id).status == "running"
        first.reload()
        screenshot(first, "run-page-live", full_page=False)
        wait_status(first, "succeeded")
        wait_status(second, "succeeded")
        assert runner.wait(timeout=60) == 0, runner.stderr.read()
    finally:
        if runner.poll() is None:
            runner.kill()

    stream = [e.seq for e in engine.event_page(run.id, after=0, limit=1000)]
    assert stream == list(range(1, len(stream) + 1)) and stream[-1] == engine.get_run(run.id).last_seq
    for page in (first, second):
        assert shown_seqs(page) == stream       # every event once, in order: none lost, none repeated
    # the reloaded page rendered the run so far on the server, then followed the rest live
    by_server = shown_seqs(first, "#events li.ev:not(.live)")
    live = shown_seqs(first, "#events li.ev.live")
    assert by_server and live, (by_server, live)
    assert by_server + live == stream and by_server[-1] > 15
    assert errors == []

    record = engine.get_run(run.id)
    for page in (first, second):
        assert page.text_content("#run-tin") == str(record.tokens_in)
        assert page.text_content("#run-tout") == str(record.tokens_out)
        assert page.text_content("#run-cost") == f"{record.cost_usd:.6f}"
        statuses = page.eval_on_selector_all(
            "#tree li.node", "nodes => Object.fromEntries(nodes.map(n => [n.dataset.node, n.dataset.status || '']))")
        for stage in STAGES:
            assert statuses[f"slow/{stage}"] == "done", statuses
        # the team runs at its own path (its manager speaks there), its members below it
        assert [statuses[f"slow/crew/crew{m}"] for m in ("", "/a1", "/a2")] == ["done"] * 3, statuses
        assert page.text_content("#output") == record.output
        assert page.locator("#events li.ev.t-tool-call").count() == 2
    # the streamed words stand in for a message only until it completes
    assert first.locator("#events li.ev.t-message-delta:visible").count() == 0
    screenshot(first, "run-page")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile = phone.new_page()
    login(mobile, server.url, served.read_token, next_path=f"/runs/{run.id}")
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the run page scrolls sideways on a phone ({width}px)"
    screenshot(mobile, "run-page-phone", full_page=False)
    context.close()
    phone.close()


def test_the_page_rides_out_a_server_restart(browser, served, tmp_path):
    """The server goes away mid-run and comes back on the same address: the page reconnects by
    itself (Last-Event-ID) and ends with every event of the run exactly once. (Without --auth:
    sessions live in the server's memory, so with --auth a restart signs the page out; see
    test_a_restart_signs_the_page_out.)"""
    engine = served.engine
    engine.apply(_slow_project(tmp_path / "repo", latency="1s"))
    server = served.start(auth=False)
    runner = cli(served.home, served.store_url, "run", "pipeline/slow")
    try:
        run = wait_until(lambda: _running_run(engine, "pipeline/default/slow"), what="the run to be recorded")
        page = browser.new_context().new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        page.wait_for_function("() => document.querySelectorAll('#events li.ev.live').length > 0", timeout=20_000)
        server.process.kill()     # abruptly: no goodbye on the stream
        server.stop()
        served.servers.remove(server)
        page.wait_for_selector("#live[data-state=reconnecting]", state="attached", timeout=20_000)
        down_at = engine.get_run(run.id).last_seq
        wait_until(lambda: engine.get_run(run.id).last_seq > down_at + 5, what="events while the server is down")
        port = int(server.url.rsplit(":", 1)[1])
        served.start(auth=False, port=port)
        wait_status(page, "succeeded")
        assert runner.wait(timeout=60) == 0, runner.stderr.read()
    finally:
        if runner.poll() is None:
            runner.kill()
    stream = [e.seq for e in engine.event_page(run.id, after=0, limit=1000)]
    assert shown_seqs(page) == stream


def test_a_restart_signs_the_page_out(browser, served, tmp_path):
    """With --auth, a restarted server no longer knows the browser's session: the page says so
    and links to the login, which brings it back to the run, followed live again."""
    engine = served.engine
    engine.apply(_gated_project(tmp_path / "repo"))
    server = served.start()
    runner = cli(served.home, served.store_url, "run", "pipeline/gated", "-p", "topic=x")
    assert runner.wait(timeout=60) == 3, runner.stderr.read()
    run = _running_run(engine, "pipeline/default/gated")
    page = browser.new_context().new_page()
    login(page, server.url, served.read_token, next_path=f"/runs/{run.id}")
    page.wait_for_selector("#live[data-state=live]", state="attached")
    server.process.kill()
    server.stop()
    served.servers.remove(server)
    served.start(port=int(server.url.rsplit(":", 1)[1]))
    page.wait_for_selector("#live[data-state='signed out']", state="attached", timeout=30_000)
    page.click("#live a")
    page.fill("#token", served.read_token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{server.url}/runs/{run.id}")
    page.wait_for_selector("#live[data-state=live]", state="attached")
    assert shown_seqs(page) == [e.seq for e in engine.event_page(run.id, after=0, limit=1000)]


def _gated_project(folder):
    script = {"writer": [{"content": "a draft about <b>heat</b> pumps", "usage": {"input": 10, "output": 5}}],
              "announcer": [{"content": "published!", "usage": {"input": 8, "output": 2}}]}
    pipeline = manifest("Pipeline", "gated", {
        "params": {"topic": {"type": "string"}},
        "stages": [
            {"name": "draft", "agent": "writer", "input": "Write about {{ params.topic }}."},
            {"name": "publish", "needs": ["draft"], "approval": {"message": "Publish the {{ params.topic }} article?",
                                                                  "timeout": "1h"}},
            {"name": "announce", "needs": ["publish"], "agent": "announcer", "input": "Announce it."},
        ],
        "output": "{{ stages.announce.output }}",
    })
    return write_project(folder, script, {"writer": "You write.", "announcer": "You announce."}, [pipeline])


def test_approve_through_the_page(browser, served, tmp_path):
    engine = served.engine
    engine.apply(_gated_project(tmp_path / "repo"))
    server = served.start()
    runner = cli(served.home, served.store_url, "run", "pipeline/gated", "-p", "topic=heat pumps")
    assert runner.wait(timeout=60) == 3, runner.stderr.read()     # parked at the approval
    run = _running_run(engine, "pipeline/default/gated")
    assert run.status == "waiting"

    # a session without the approve scope sees the approval, and how to answer it, but no form
    viewer = browser.new_context().new_page()
    login(viewer, server.url, served.read_token, next_path=f"/runs/{run.id}")
    card = viewer.locator("#approvals .approval")
    assert card.count() == 1 and "Publish the heat pumps article?" in card.inner_text()
    assert viewer.locator("#approvals form.answer").count() == 0
    assert "approve scope" in card.inner_text()

    context = browser.new_context()
    page = context.new_page()
    login(page, server.url, served.approve_token, next_path=f"/runs/{run.id}")
    assert page.get_attribute("#run", "data-status") == "waiting"
    assert page.is_visible("#approvals")
    screenshot(page, "run-page-approval")
    page.fill("#approvals form.answer textarea", "ship it")
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/runs/{run.id}/approval")) as answer:
        page.click("#approvals form.answer button.approve")
    assert answer.value.status == 202, answer.value.text()
    wait_status(page, "succeeded")
    wait_status(viewer, "succeeded")      # the other tab saw the run continue too
    page.wait_for_selector("#approvals", state="hidden")
    assert page.text_content("#output") == "published!"

    record = engine.get_run(run.id)
    assert record.status == "succeeded" and record.output == "published!"
    events = engine.event_page(run.id, after=0, limit=1000)
    resolved = [e for e in events if e.type == "approval.resolved"]
    assert len(resolved) == 1
    assert resolved[0].data["approved"] is True and resolved[0].data["message"] == "ship it"
    assert resolved[0].data["by"].startswith("token:")
    assert shown_seqs(page) == [e.seq for e in events] == shown_seqs(viewer)
    # the agent's text is shown as text, never as markup
    assert page.locator("#events b").count() == 0
    assert "a draft about <b>heat</b> pumps" in page.inner_text("#events")
    context.close()
