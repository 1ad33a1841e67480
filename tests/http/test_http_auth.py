"""Tokens, scopes, namespaces, revocation, the rate limit and the audit log, over a real server;
errors are problem+json. On SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from http_helpers import doc, project, wait_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def two_namespaces(served, tmp_path) -> None:
    folder = project(tmp_path / "m", {"greeter": [{"content": "hi"}] * 20}, [
        doc("Agent", "greeter", {"model": "m"}),
        doc("Agent", "greeter", {"model": "m"}, namespace="team-b"),
    ])
    served.engine.apply(folder)


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    return body


def test_reading_with_auth_needs_a_read_token(serve_factory):
    served = serve_factory(auth=True)
    url = served.url
    problem(httpx.get(f"{url}/api/v1/runs"), 401)
    assert httpx.get(f"{url}/api/v1/runs").headers["www-authenticate"] == "Bearer"
    problem(httpx.get(f"{url}/api/v1/runs", headers=bearer("aft_000000000000_" + "x" * 43)), 401)   # unknown
    problem(httpx.get(f"{url}/api/v1/runs", headers={"Authorization": "Basic abc"}), 401)
    runner = served.engine.token_create(["run"]).token
    assert "lacks the 'read' scope" in problem(httpx.get(f"{url}/api/v1/runs", headers=bearer(runner)), 403)["detail"]
    reader = served.engine.token_create(["read"]).token
    assert httpx.get(f"{url}/api/v1/runs", headers=bearer(reader)).status_code == 200
    # No token in a query string: it is not read from there.
    problem(httpx.get(f"{url}/api/v1/runs", params={"token": reader, "access_token": reader}), 401)
    # Operators' endpoints need none.
    for path in ("/metrics", "/healthz", "/readyz"):
        assert httpx.get(url + path).status_code == 200, path


def test_without_auth_reads_are_open_but_writes_need_their_scope(serve_factory, tmp_path):
    served = serve_factory()
    two_namespaces(served, tmp_path)
    url = served.url
    assert httpx.get(f"{url}/api/v1/runs").status_code == 200
    problem(httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}), 401)
    reader = served.engine.token_create(["read", "approve"]).token
    assert "'run' scope" in problem(httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"},
                                               headers=bearer(reader)), 403)["detail"]
    runner = served.engine.token_create(["run"]).token
    started = httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}, headers=bearer(runner))
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    problem(httpx.post(f"{url}/api/v1/runs/{run_id}/approval", json={}, headers=bearer(runner)), 403)
    wait_for(lambda: httpx.get(f"{url}/api/v1/runs/{run_id}").json()["status"] == "succeeded", "the run")
    # Approving a run that waits for nothing: 409, recorded.
    assert problem(httpx.post(f"{url}/api/v1/runs/{run_id}/approval", json={"decision": "approve"},
                              headers=bearer(reader)), 409)["detail"].endswith("(it is succeeded)")


def test_a_namespaced_token_sees_only_its_namespace(serve_factory, tmp_path):
    served = serve_factory(auth=True)
    two_namespaces(served, tmp_path)
    url = served.url
    admin = served.engine.token_create(["read", "run"]).token
    team_b = served.engine.token_create(["read", "run"], namespace="team-b").token
    ids = {}
    for target in ("agent/greeter", "agent/team-b/greeter"):
        started = httpx.post(f"{url}/api/v1/runs", json={"target": target}, headers=bearer(admin))
        assert started.status_code == 202, started.text
        ids[target] = started.json()["id"]
    for run_id in ids.values():
        wait_for(lambda r=run_id: httpx.get(f"{url}/api/v1/runs/{r}", headers=bearer(admin)).json()["status"]
                 == "succeeded", "the runs")
    mine, other = ids["agent/team-b/greeter"], ids["agent/greeter"]
    listed = httpx.get(f"{url}/api/v1/runs", headers=bearer(team_b)).json()["items"]
    assert [r["id"] for r in listed] == [mine]
    assert len(httpx.get(f"{url}/api/v1/runs", headers=bearer(admin)).json()["items"]) == 2
    problem(httpx.get(f"{url}/api/v1/runs", params={"namespace": "default"}, headers=bearer(team_b)), 403)
    # Another namespace's run is as if it did not exist: the run, its events, its stream, cancel.
    problem(httpx.get(f"{url}/api/v1/runs/{other}", headers=bearer(team_b)), 404)
    problem(httpx.get(f"{url}/api/v1/runs/{other}/events", headers=bearer(team_b)), 404)
    problem(httpx.get(f"{url}/api/v1/runs/{other}/events", headers={**bearer(team_b), "Accept": "text/event-stream"}),
            404)
    problem(httpx.post(f"{url}/api/v1/runs/{other}/cancel", headers=bearer(team_b)), 404)
    assert httpx.get(f"{url}/api/v1/runs/{mine}/events", headers=bearer(team_b)).json()["items"]
    # Resources: only its namespace; starting a run elsewhere is refused.
    resources = httpx.get(f"{url}/api/v1/resources", headers=bearer(team_b)).json()
    assert resources and {r["namespace"] for r in resources} == {"team-b"}
    problem(httpx.get(f"{url}/api/v1/resources/agent/default/greeter", headers=bearer(team_b)), 404)
    assert httpx.get(f"{url}/api/v1/resources/agent/team-b/greeter", headers=bearer(team_b)).status_code == 200
    problem(httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}, headers=bearer(team_b)), 403)


def test_a_revoked_token_stops_at_once(serve_factory):
    served = serve_factory(auth=True)
    created = served.engine.token_create(["read"])
    assert httpx.get(f"{served.url}/api/v1/runs", headers=bearer(created.token)).status_code == 200
    served.engine.token_revoke(created.info.id)
    problem(httpx.get(f"{served.url}/api/v1/runs", headers=bearer(created.token)), 401)
    listed = {t.id: t for t in served.engine.tokens()}
    assert listed[created.info.id].revoked and listed[created.info.id].last_used_at is not None


def test_writes_are_rate_limited_per_token_and_every_write_is_audited(serve_factory, tmp_path):
    served = serve_factory(rate_limit=3)
    two_namespaces(served, tmp_path)
    url = served.url
    first = served.engine.token_create(["run"], name="ci")
    second = served.engine.token_create(["run"])
    codes = [httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}, headers=bearer(first.token)).status_code
             for _ in range(3)]
    assert codes == [202, 202, 202]
    limited = httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}, headers=bearer(first.token))
    body = problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 20 and body["retryAfter"] == int(limited.headers["retry-after"])
    # The limit is per token: another one still writes.
    assert httpx.post(f"{url}/api/v1/runs/nonexistent/cancel", headers=bearer(second.token)).status_code == 404
    problem(httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"}), 401)
    entries = served.engine.audit_log()
    assert [(e.token_id, e.action, e.status) for e in reversed(entries)] == [
        (first.info.id, "run.start", 202), (first.info.id, "run.start", 202), (first.info.id, "run.start", 202),
        (first.info.id, "run.start", 429), (second.info.id, "run.cancel", 404), (None, "run.start", 401)]
    assert all(e.source == "127.0.0.1" and e.at > 0 for e in entries)
    assert entries[-1].target == "agent/greeter" and entries[1].target == "nonexistent"


def test_bad_bodies_are_422_problems(serve_factory):
    served = serve_factory()
    token = served.engine.token_create(["run", "approve"]).token
    for body in ({}, {"target": "not a target"}, {"target": "agent/x", "surprise": 1},
                 {"target": "agent/x", "params": {"k": {"nested": 1}}}, {"target": "agent/x", "thread": "a b"}):
        answer = problem(httpx.post(f"{served.url}/api/v1/runs", json=body, headers=bearer(token)), 422)
        assert answer["errors"] and answer["detail"].startswith("the request is not valid")
    problem(httpx.post(f"{served.url}/api/v1/runs", content=b"{not json", headers={**bearer(token),
                                                                                  "content-type": "application/json"}), 422)
    problem(httpx.post(f"{served.url}/api/v1/runs", json={"target": "agent/missing"}, headers=bearer(token)), 404)
    problem(httpx.post(f"{served.url}/api/v1/runs", content=b"x" * (3 << 20), headers=bearer(token)), 413)
    problem(httpx.post(f"{served.url}/api/v1/runs/x/approval", json={"decision": "maybe"}, headers=bearer(token)), 422)
    problem(httpx.get(f"{served.url}/api/v1/nothing-here"), 404)


def test_login_gives_an_httponly_strict_cookie_that_reads_and_logout_ends_it(serve_factory):
    served = serve_factory(auth=True)
    created = served.engine.token_create(["read"])
    with httpx.Client(base_url=served.url) as browser:
        refused = browser.post("/login", data={"token": "aft_nope", "next": "/runs"})
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login?error=1")
        assert "set-cookie" not in refused.headers
        done = browser.post("/login", data={"token": created.token, "next": "//evil.example/x"})
        assert done.status_code == 303 and done.headers["location"] == "/"   # never off-site
        cookie = done.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert created.token not in cookie
        assert browser.get("/api/v1/runs").status_code == 200            # the session reads
        assert browser.get("/api/v1/runs/x/events", headers={"Accept": "text/event-stream"}).status_code == 404
        served.engine.token_revoke(created.info.id)
        assert browser.get("/api/v1/runs").status_code == 401            # revoked: the session ends too
    other = served.engine.token_create(["read"])
    with httpx.Client(base_url=served.url) as browser:
        assert browser.post("/login", data={"token": other.token}).status_code == 303
        assert browser.get("/api/v1/runs").status_code == 200
        assert browser.post("/logout").status_code == 303
        assert browser.get("/api/v1/runs").status_code == 401
