"""The web view's other pages in a real browser: login, resources with their Ready condition, the
runs list and its filters, a graph drawn as SVG, revisions with their diffs; user text shown as
text; screenshots of each under tests/artifacts/."""

from __future__ import annotations

import httpx

from .helpers import PHONE, cli, login, manifest, screenshot, shown_seqs, write_project

XSS = '<b id="xss">bold</b><script>window.pwned = 1</script><img src=x id="xss-img">'


def _project(folder, writer_instructions: str):
    script = {"writer": [{"content": XSS, "usage": {"input": 12, "output": 7}}],
              "lead": [{"content": "done"}], "a1": [{"content": "x"}], "a2": [{"content": "y"}],
              "checker": [{"content": "ok"}]}
    team = manifest("Team", "crew", {"manager": "lead", "members": [{"agent": "a1"}, {"agent": "a2"}]})
    pipeline = manifest("Pipeline", "flow", {"stages": [
        {"name": "write", "agent": "writer", "input": "go"},
        {"name": "check", "agent": "checker", "needs": ["write"], "input": "check",
         "routes": [{"when": "'AGAIN' in output", "goto": "write"}], "maxVisits": 2},
        {"name": "ship", "needs": ["check"], "approval": {"message": "ship?", "timeout": "1h"}},
    ]})
    agents = {"writer": writer_instructions, "lead": "You lead.", "a1": "One.", "a2": "Two.", "checker": "You check."}
    return write_project(folder, script, agents, [team, pipeline])


def _seqs_of(engine, run_id):
    return [e.seq for e in engine.event_page(run_id, after=0, limit=1000)]


def test_pages_in_a_browser(browser, served, tmp_path):
    engine = served.engine
    repo = tmp_path / "repo"
    engine.apply(_project(repo, "You write."))
    engine.apply(_project(repo, "You write short articles."))     # revision 2: one field changed
    runner = cli(served.home, served.store_url, "run", "agent/writer", "-i", "hello")
    assert runner.wait(timeout=60) == 0, runner.stderr.read()
    run = engine.runs(namespace=None).items[0]
    server = served.start()
    context = browser.new_context()
    page = context.new_page()
    scripts_run: list[str] = []
    page.on("dialog", lambda d: scripts_run.append(d.message))

    # with --auth, a page sends the browser to log in, then back where it was going
    page.goto(f"{server.url}/runs?status=succeeded")
    assert "/login?next=" in page.url
    screenshot(page, "login")
    page.fill("#token", served.read_token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{server.url}/runs?status=succeeded")
    assert page.locator(f"tr[data-run='{run.id}']").count() == 1
    screenshot(page, "runs")
    page.select_option("select[name=status]", "waiting")
    page.click(".filters button")
    page.wait_for_url("**/runs?status=waiting*")
    assert page.locator("table.runs").count() == 0 and "No runs match" in page.inner_text("main")
    page.goto(f"{server.url}/runs?target=agent/writer")
    assert page.locator("tr[data-run]").count() == 1

    # the run page shows the model's text as text: no markup, no script
    response = page.goto(f"{server.url}/runs/{run.id}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert shown_seqs(page) == _seqs_of(engine, run.id)
    assert page.locator("#xss, #xss-img").count() == 0
    assert page.evaluate("() => window.pwned") is None and scripts_run == []
    assert XSS in page.inner_text("#output")
    # the run's target links to the graph it executed: the revision it is pinned to
    page.click("h1 .target a")
    page.wait_for_url(f"**/graph/agent/default/writer?revision={run.revision}")
    assert page.locator("#graph svg g.node").count() == 1 and f"at revision {run.revision}" in page.inner_text("h1")

    # resources: every applied resource with its Ready condition
    page.goto(f"{server.url}/")
    applied = engine.resources(None, namespace=None)
    rows = page.eval_on_selector_all(
        "table.resources tr[data-kind]",
        "rows => rows.map(r => [r.dataset.kind, r.dataset.name, r.querySelector('.badge').textContent])")
    expected = [[r.kind, f"{r.namespace}/{r.name}", next(c.status for c in r.conditions if c.type == "Ready")]
                for r in applied]
    assert sorted(rows) == sorted(expected) and len(rows) == 8
    assert all(status == "True" for _, _, status in rows)
    screenshot(page, "resources")

    # the graph of a pipeline: a node per stage, the loop back drawn, the Mermaid text alongside
    from agentform.specs import ResourceKey

    page.click("a[href='/graph/pipeline/default/flow']")
    page.wait_for_url("**/graph/pipeline/default/flow")
    assert page.locator("#graph svg g.node").count() == 3
    assert page.locator("#graph svg g.node.approval").count() == 1
    assert page.locator("#graph svg g.edge.route").count() == 1
    assert page.locator("#graph svg g.edge.solid").count() == 2
    labels = page.eval_on_selector_all("#graph svg g.node text", "ts => ts.map(t => t.textContent)")
    assert [label.split("agent")[0].strip() for label in labels] == ["write", "check", "shipapproval"]
    mermaid = engine.graph_mermaid(ResourceKey("Pipeline", "default", "flow"))
    assert page.text_content("#mermaid") == mermaid
    screenshot(page, "graph-pipeline")
    page.goto(f"{server.url}/graph/team/default/crew")
    assert page.locator("#graph svg g.node").count() == 3
    assert page.locator("#graph svg g.node.manager").count() == 1
    assert page.locator("#graph svg g.group").count() == 1
    screenshot(page, "graph-team")
    missing = page.goto(f"{server.url}/graph/team/default/nobody")
    assert missing.status == 404 and "not applied" in page.inner_text("main")

    # revisions: the second changed one field of one agent; its diff says which and how
    page.goto(f"{server.url}/revisions")
    change = page.locator("#r2 tr.change")
    assert change.count() == 1
    assert change.get_attribute("data-action") == "update"
    assert change.get_attribute("data-resource") == "Agent/default/writer"
    text = change.inner_text()
    assert "instructions" in text and "You write." in text and "You write short articles." in text
    assert page.locator("#r1 tr.change").count() == 8
    page.click("#r2 a:has-text('diff with #1')")
    page.wait_for_url("**/revisions?to=2&from=1*")
    compare = page.locator("#compare tr.change")
    assert compare.count() == 1 and "You write short articles." in compare.inner_text()
    screenshot(page, "revisions")
    context.close()

    # on a phone no page scrolls sideways (wide tables and graphs scroll inside their box)
    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    mobile = phone.new_page()
    login(mobile, server.url, served.read_token)
    for path in ("/", "/runs", f"/runs/{run.id}", "/revisions", "/graph/team/default/crew"):
        mobile.goto(server.url + path)
        width = mobile.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a phone"
    screenshot(mobile, "graph-team-phone", full_page=False)
    phone.close()


def test_who_sees_what(served, tmp_path):
    """Pages keep the API's rules: a namespaced token sees nothing of another namespace, a
    revoked token's session is over, and without --auth pages need no login."""
    engine = served.engine
    engine.apply(_project(tmp_path / "repo", "You write."))
    runner = cli(served.home, served.store_url, "run", "agent/writer", "-i", "hello")
    assert runner.wait(timeout=60) == 0, runner.stderr.read()
    run = engine.runs(namespace=None).items[0]
    elsewhere = engine.token_create(["read"], namespace="other", name="other-ns")
    server = served.start()
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as client:
        assert client.get("/").status_code == 303
        login_page = client.post("/login", data={"token": elsewhere.token, "next": "/runs"})
        assert login_page.status_code == 303 and login_page.headers["location"] == "/runs"
        assert run.id not in client.get("/runs").text
        assert client.get(f"/runs/{run.id}").status_code == 404
        assert "writer" not in client.get("/").text
        assert client.get("/graph/agent/default/writer").status_code == 404
        engine.token_revoke(elsewhere.info.id)
        gone = client.get("/runs")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
        # only a local path may follow a login
        assert 'value="/"' in client.get("/login", params={"next": "//evil.example/x"}).text
    open_server = served.start(auth=False)
    with httpx.Client(base_url=open_server.url, timeout=10) as client:
        page = client.get(f"/runs/{run.id}")
        assert page.status_code == 200 and f'data-run="{run.id}"' in page.text
        assert '<section id="approvals" hidden>' in page.text    # no approval waits here
        assert client.get("/static/run.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/static/..%2Fweb.py").status_code == 404
