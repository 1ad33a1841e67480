"""No secret value in any answer of ``serve``: a canary Secret's value sits raw in a run's stream
(written by a CLI process that never read the Secret), and in a run input posted over HTTP;
the server, which can read the Secret, is asked every GET route it has (the JSON API, SSE,
/metrics, the web pages) and the write answers: no response carries the value or any of its
encodings."""

from __future__ import annotations

import secrets

import httpx
from http_helpers import cli, doc, project, read_sse, stored_stream, wait_for

from agentform.engine.redaction import encoded_forms

CANARY = f"sk-canary-{secrets.token_hex(12)}"


def needles(value: str) -> set[str]:
    """The value, its encodings and every 12-character piece of it."""
    return encoded_forms(value) | {value[i:i + 12] for i in range(len(value) - 11)}


def leaks(text: str) -> list[str]:
    return sorted(n for n in needles(CANARY) if n in text)


def test_no_route_of_serve_answers_with_a_secret_value(store_url, tmp_path, monkeypatch):
    from http_serving import served

    folder = project(tmp_path / "m", {"parrot": [{"content": f"the key is {CANARY}, said the parrot"}]}, [
        doc("Secret", "canary", {"fromEnv": "LEAK_KEY"}),
        doc("Agent", "parrot", {"model": "m", "instructions": "Repeat."}),
    ])
    home = tmp_path / "home"
    assert cli("apply", str(folder), home=home, store_url=store_url, env={"LEAK_KEY": CANARY}).returncode == 0
    # The run does not use the Secret, so its process never reads the value: the stream holds it raw.
    ran = cli("run", "agent/parrot", "-i", "speak", home=home, store_url=store_url)
    assert ran.returncode == 0, ran.stderr
    raw = stored_stream(store_url, wait_for(lambda: _first_run(store_url), "the run"))
    assert any(CANARY in str(e["data"]) for e in raw), "precondition: the stored stream carries the canary"

    monkeypatch.setenv("LEAK_KEY", CANARY)
    with served(store_url, home, auth=False) as server:
        token = server.engine.token_create(["read", "run", "approve"]).token
        auth = {"Authorization": f"Bearer {token}"}
        bodies: dict[str, str] = {}
        posted = httpx.post(f"{server.url}/api/v1/runs", json={"target": "agent/parrot", "input": f"say {CANARY}"},
                            headers=auth, timeout=30)
        assert posted.status_code == 202, posted.text
        bodies["POST /api/v1/runs"] = posted.text
        new_id = posted.json()["id"]
        wait_for(lambda: httpx.get(f"{server.url}/api/v1/runs/{new_id}").json()["status"] == "succeeded", "the run")
        bodies["POST cancel"] = httpx.post(f"{server.url}/api/v1/runs/{new_id}/cancel", headers=auth).text
        bodies["POST approval"] = httpx.post(f"{server.url}/api/v1/runs/{new_id}/approval", json={}, headers=auth).text
        first = raw[0]["run"]
        values = {"run_id": first, "kind": "agent", "namespace": "default", "name": "parrot", "id": first}
        fetched = 0
        for path, methods in get_routes(server.app.routes):
            if "GET" not in methods or path.startswith(("/static", "/docs", "/redoc")):
                continue
            for run_id in (first, new_id):
                url = path.format(**{**values, "run_id": run_id, "id": run_id}) if "{" in path else path
                if "{" in url:
                    continue
                query = {"from": 0, "to": 1} if url.endswith("/diff") else None
                response = httpx.get(server.url + url, params=query, headers=auth, timeout=30)
                assert response.status_code < 500, (url, response.status_code)
                bodies[f"GET {url}"] = response.text
                fetched += 1
        for run_id in (first, new_id):
            sse = read_sse(server.url, run_id, after=0)
            assert sse.ended and sse.events
            bodies[f"SSE {run_id}"] = str(sse.events)
        assert fetched >= 12 and any("/metrics" in k for k in bodies) and any(k == f"GET /api/v1/runs/{first}"
                                                                              for k in bodies)
        assert any("the key is" in body for body in bodies.values())   # the stream itself was served
        found = {where: leaks(body) for where, body in bodies.items() if leaks(body)}
        assert not found, found


def get_routes(routes, prefix: str = ""):
    """(path, methods) of every route, through included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from get_routes(included.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "methods"):
            yield prefix + route.path, route.methods or set()


def _first_run(store_url: str) -> str | None:
    from agentform.engine.store import open_store

    store = open_store(store_url)
    try:
        runs = store.list_runs(limit=1)
        return runs[0].id if runs else None
    finally:
        store.close()
