"""Fixtures of the web view's tests: Debian's chromium driven by playwright, headless.

``browser`` (module): a launched chromium (``/usr/bin/chromium``, or ``AGENTFORM_CHROMIUM``) with
the flags FIELD-NOTES names (no sandbox, no background networking, every host but 127.0.0.1
unresolvable). When chromium or playwright is missing the tests FAIL with how to install
them; they never skip (``make test`` installs chromium with apt-get).
``served`` (function): a fresh home with the store at ``store_url`` (once per backend), a
``read`` token and an ``approve`` token, and a factory that starts `agentform serve --auth` on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .helpers import Server, serve

CHROMIUM = os.environ.get("AGENTFORM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"chromium is missing at {CHROMIUM}: the web view's tests drive a real browser. Install "
                    "Debian's chromium (`apt-get install chromium`; `make test` does it) or point "
                    "AGENTFORM_CHROMIUM at a chromium binary", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: `pip install -e '.[test]'` (never `playwright "
                    "install`: the tests use Debian's chromium)", pytrace=False)
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:   # a broken install: say so plainly, do not skip
            pytest.fail(f"chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Served:
    """A home and store to serve, with tokens; ``start()`` runs `agentform serve --auth` on them."""

    home: Path
    store_url: str
    engine: Any
    read_token: str
    approve_token: str
    servers: list[Server] = field(default_factory=list)

    def start(self, *, auth: bool = True, port: int | None = None) -> Server:
        server = serve(self.home, self.store_url, auth=auth, port=port)
        self.servers.append(server)
        return server


@pytest.fixture
def served(request, tmp_path, store_url):
    from agentform import Engine

    home = tmp_path / "home"
    engine = Engine(home=home, store=store_url)
    read = engine.token_create(["read"], name="viewer").token
    approver = engine.token_create(["read", "approve"], name="approver").token
    state = Served(home, store_url, engine, read, approver)
    try:
        yield state
    finally:
        if "browser" in request.fixturenames:
            # The test's pages go first: an open EventSource holds a stopping server's drain.
            for context in request.getfixturevalue("browser").contexts:
                context.close()
        for server in state.servers:
            server.stop()
        engine.close()
