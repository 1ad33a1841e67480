"""fetch: only the listed hosts, loopback and link-local only when listed, redirects checked
again, responses and time bounded. Against a real HTTP server on 127.0.0.1, listed explicitly.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading

import pytest
from runtime.helpers import agent, of, project, run


class _Handler(http.server.BaseHTTPRequestHandler):
    release: threading.Event

    def do_GET(self):  # noqa: N802 - http.server's name
        port = self.server.server_address[1]
        if self.path == "/hello":
            self._send(200, f"hello; host header {self.headers['Host']}".encode())
        elif self.path == "/inside":
            self._redirect(f"http://127.0.0.1:{port}/hello")
        elif self.path == "/outside":
            self._redirect(f"http://localhost:{port}/hello")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/big":
            self._send(200, b"a" * 300_000)
        elif self.path == "/binary":
            self._send(200, b"\x89PNG\0\0", "image/png")
        elif self.path == "/slow":
            self.server.release.wait(30)   # held until the test ends
            self._send(200, b"late")
        else:
            self._send(404, b"no such page")

    def _send(self, status, body, kind="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


def _fetch(url, **extra):
    return {"toolCalls": [{"name": "fetch", "arguments": {"url": url, **extra}}]}


def _run(store, tmp_path, hosts, turns):
    script = {"agents": {"reader": [*turns, {"content": "done"}]}}
    root = project(tmp_path / "m", script, [agent("reader", tools=[{"builtin": "fetch", "hosts": hosts}])])
    result, events = run(store, tmp_path, root, "agent/reader")
    assert result.status == "succeeded", result.error
    return [e.data for e in of(events, "tool.result", "reader")]


def test_fetch_reaches_a_listed_loopback_server_and_follows_redirects_inside(store, tmp_path, server):
    base = f"http://127.0.0.1:{server}"
    hello, inside, big, binary, missing = _run(store, tmp_path, ["127.0.0.1"], [
        _fetch(f"{base}/hello"), _fetch(f"{base}/inside"), _fetch(f"{base}/big", max_bytes=1000),
        _fetch(f"{base}/binary"), _fetch(f"{base}/nothing")])
    assert hello["output"]["status"] == 200
    # the connection goes to the checked address; the Host header keeps what the URL said
    assert hello["output"]["text"] == f"hello; host header 127.0.0.1:{server}"
    assert inside["output"]["url"] == f"{base}/hello" and inside["output"]["text"].startswith("hello")
    assert big["output"]["bytes"] == 1000 and big["output"]["truncated"] is True
    assert len(big["output"]["text"]) == 1000
    assert binary["output"]["text"] is None and "binary" in binary["output"]["note"]
    assert missing["output"]["status"] == 404


def test_fetch_refuses_unlisted_hosts_loopback_names_and_other_schemes(store, tmp_path, server):
    # "localhost" is listed but resolves to loopback, and no loopback address is listed
    by_name, unlisted, scheme, looping = _run(store, tmp_path, ["localhost", "example.com"], [
        _fetch(f"http://localhost:{server}/hello"), _fetch("http://example.org/"),
        _fetch("file:///etc/passwd"), _fetch(f"http://127.0.0.1:{server}/loop")])
    assert "fetch refuses localhost (which resolves to 127.0.0.1): it is a loopback address" in by_name["error"]
    assert "host example.org:80 is not one this agent may fetch from (its hosts: localhost, example.com)" \
        in unlisted["error"]
    assert "http and https URLs only" in scheme["error"]
    assert f"host 127.0.0.1:{server} is not one" in looping["error"]


def test_a_listed_port_is_the_only_port(store, tmp_path, server):
    other, listed = _run(store, tmp_path, ["127.0.0.1:1"], [
        _fetch(f"http://127.0.0.1:{server}/hello"), _fetch("http://127.0.0.1:1/")])
    assert f"host 127.0.0.1:{server} is not one" in other["error"]
    assert "ConnectError" in listed["error"]   # allowed: reached, and nothing listens there


def test_a_redirect_to_an_unlisted_host_is_refused(store, tmp_path, server):
    base = f"http://127.0.0.1:{server}"
    inside, outside = _run(store, tmp_path, ["127.0.0.1"], [_fetch(f"{base}/inside"), _fetch(f"{base}/outside")])
    assert inside["output"]["status"] == 200
    assert f"host localhost:{server} is not one this agent may fetch from" in outside["error"]


def test_redirect_chains_and_slow_servers_are_bounded(store, tmp_path, server, monkeypatch):
    from agentform.engine.runtime.builtins import fetch

    monkeypatch.setattr(fetch, "TIMEOUT", 0.5)
    base = f"http://127.0.0.1:{server}"
    looping, slow = _run(store, tmp_path, ["127.0.0.1"], [_fetch(f"{base}/loop"), _fetch(f"{base}/slow")])
    assert f"more than {fetch.MAX_REDIRECTS} redirects" in looping["error"]
    assert "took longer than 0.5 s" in slow["error"]


def test_link_local_and_unspecified_addresses_need_to_be_listed():
    from agentform.engine.runtime.builtins.fetch import _refused
    from agentform.specs.hosts import parse_host

    metadata = ipaddress.ip_address("169.254.169.254")
    listed = [parse_host("metadata.example")]
    assert "link-local" in _refused(metadata, listed)
    assert _refused(metadata, [parse_host("169.254.169.254")]) == ""
    assert "unspecified" in _refused(ipaddress.ip_address("0.0.0.0"), [parse_host("127.0.0.1")])
    assert "loopback" in _refused(ipaddress.ip_address("::ffff:127.0.0.1"), listed)
    assert _refused(ipaddress.ip_address("::1"), [parse_host("[::1]")]) == ""


@pytest.mark.parametrize(("entry", "problem"), [
    ("http://example.com", "no scheme, user or path"), ("example.com/path", "no scheme, user or path"),
    ("::1", "brackets"), ("example.com:0", "port must be"), ("0.0.0.0", "unspecified"),
])
def test_bad_host_entries_are_refused(entry, problem):
    from agentform.specs.hosts import parse_host

    with pytest.raises(ValueError, match=problem):
        parse_host(entry)
