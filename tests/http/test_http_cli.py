"""The commands: ``token create|list|revoke|audit`` and ``serve`` as a real process (bind rule,
/metrics counting runs other processes executed, start over HTTP, SIGTERM)."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import httpx
from http_helpers import CLI, ROOT, cli, doc, project, wait_for
from http_serving import free_port


def test_token_commands_show_the_token_once_and_keep_only_its_hash(store_url, tmp_path):
    home = tmp_path / "home"
    made = cli("token", "create", "--scope", "read", "--scope", "run", "--namespace", "team-b", "--name", "ci",
               home=home, store_url=store_url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"aft_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    token_id = token.split("_")[1]
    assert "shown this once" in made.stderr
    listed = cli("token", "list", "-o", "json", home=home, store_url=store_url)
    rows = json.loads(listed.stdout)
    assert rows == [{**rows[0], "id": token_id, "name": "ci", "scopes": ["read", "run"], "namespace": "team-b",
                     "revoked": False, "revokedAt": None}]
    table = cli("token", "list", home=home, store_url=store_url).stdout
    assert token_id in table and "read,run" in table and token not in table
    # Only a hash is stored: the token appears nowhere in the store.
    from agentform.engine.store import open_store

    store = open_store(store_url)
    try:
        with store._read() as cur:
            stored = cur.execute("SELECT id, name, token_hash, scopes, namespace FROM api_tokens").fetchall()
    finally:
        store.close()
    assert token not in repr(stored) and token.split("_", 2)[2] not in repr(stored)
    bad = cli("token", "create", "--scope", "admin", home=home, store_url=store_url)
    assert bad.returncode == 1 and "unknown scope 'admin'" in bad.stderr and "Traceback" not in bad.stderr
    revoked = cli("token", "revoke", token_id, home=home, store_url=store_url)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert json.loads(cli("token", "list", "-o", "json", home=home, store_url=store_url).stdout)[0]["revoked"]
    missing = cli("token", "revoke", "000000000000", home=home, store_url=store_url)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert json.loads(cli("token", "audit", "-o", "json", home=home, store_url=store_url).stdout) == []


def test_serve_refuses_a_non_loopback_host_without_auth(tmp_path):
    refused = cli("serve", "--host", "0.0.0.0", "--port", "1", home=tmp_path / "home",
                  store_url=f"sqlite:///{tmp_path}/state.db", timeout=60)
    assert refused.returncode == 1
    assert "needs --auth" in refused.stderr and "Traceback" not in refused.stderr


def _serve(home, store_url, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "--home", str(home), "--store", store_url, "serve", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, "serve to answer /readyz", timeout=60)
    return proc, url


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_serve_process_metrics_count_runs_of_other_processes_and_sigterm_stops_it(store_url, tmp_path):
    home = tmp_path / "home"
    folder = project(tmp_path / "m", {"greeter": [{"content": "hello", "usage": {"input": 40, "output": 2}}] * 3},
                     [doc("Agent", "greeter", {"model": "m"})])
    assert cli("apply", str(folder), home=home, store_url=store_url).returncode == 0
    proc, url = _serve(home, store_url)
    try:
        before = httpx.get(f"{url}/metrics").text
        assert _metric(before, 'agentform_runs{status="succeeded"}') == 0
        assert "# TYPE agentform_event_append_latency_seconds histogram" in before
        ran = cli("run", "agent/greeter", "-i", "x", home=home, store_url=store_url)   # another process
        assert ran.returncode == 0, ran.stderr
        # /metrics reads the store at most every 2 s: wait for the figure to move.
        after = wait_for(lambda: (t := httpx.get(f"{url}/metrics").text)
                         and _metric(t, 'agentform_runs{status="succeeded"}') == 1 and t, "/metrics to count the run")
        assert _metric(after, "agentform_runs_active") == 0
        assert _metric(after, 'agentform_tokens_total{model="scripted",direction="in"}') == 40
        assert _metric(after, 'agentform_tokens_total{model="scripted",direction="out"}') == 2
        assert _metric(after, "agentform_sse_subscribers") == 0
        token = cli("token", "create", "--scope", "run", "--scope", "read", home=home, store_url=store_url).stdout.strip()
        started = httpx.post(f"{url}/api/v1/runs", json={"target": "agent/greeter"},
                             headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 202, started.text
        wait_for(lambda: httpx.get(f"{url}/api/v1/runs/{started.json()['id']}").json()["status"] == "succeeded",
                 "the run started over HTTP")
        cost = httpx.get(f"{url}/api/v1/cost", params={"by": "agent"}).json()
        assert cost["rows"][0]["key"] == "greeter" and cost["total"]["tokensIn"] == 80 and cost["total"]["runs"] == 2
        audit = json.loads(cli("token", "audit", "-o", "json", home=home, store_url=store_url).stdout)
        assert [(a["action"], a["status"], a["target"]) for a in audit] == [("run.start", 202, "agent/greeter")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err   # a graceful stop (PostgreSQL: the embedded worker drained first)
    assert "agentform serve: http://127.0.0.1:" in err and "Traceback" not in err


def test_sigterm_lets_the_runs_serve_executes_finish_within_the_drain_timeout(tmp_path):
    """SQLite: serve executes HTTP-started runs itself; stopping it waits for them (--drain-timeout),
    then cancels what is still running."""
    store_url = f"sqlite:///{tmp_path}/state.db"
    home = tmp_path / "home"
    folder = project(tmp_path / "m", {"slow": [{"content": "late", "latency": "2s"}] * 2},
                     [doc("Agent", "slow", {"model": "m"})])
    assert cli("apply", str(folder), home=home, store_url=store_url).returncode == 0
    token = cli("token", "create", "--scope", "run", "--scope", "read", home=home, store_url=store_url).stdout.strip()
    outcomes = []
    for drain in ("30", "0"):
        proc, url = _serve(home, store_url, "--drain-timeout", drain)
        started = httpx.post(f"{url}/api/v1/runs", json={"target": "agent/slow"},
                             headers={"Authorization": f"Bearer {token}"}).json()
        wait_for(lambda u=url, r=started["id"]: httpx.get(f"{u}/api/v1/runs/{r}").json()["status"] == "running",
                 "the run to start")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        listed = json.loads(cli("get", "runs", "-o", "json", home=home, store_url=store_url).stdout)
        outcomes.append(next(r["status"] for r in listed if r["id"] == started["id"]))
    assert outcomes == ["succeeded", "cancelled"]
