"""A real ``serve`` for the HTTP tests: uvicorn on a free 127.0.0.1 port, in a thread of this
process with its own event loop, over an Engine on the test's store.

Its own module with a unique name (not conftest): tests/http is no package (a package named
``http`` would shadow the standard library), so ``from conftest import ...`` would find
whichever conftest module the whole suite imported first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    engine: Any
    home: Path
    app: Any


@contextlib.contextmanager
def served(store_url: str, home: Path, **options: Any):
    import httpx
    import uvicorn

    import agentform
    from agentform.api.http.app import create_app

    engine = agentform.Engine(home=home, store=store_url)
    app = create_app(engine, **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True, name="uvicorn")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:   # wait for the real condition: /healthz answers
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200 and server.started:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not start within 30 s"
        time.sleep(0.02)
    try:
        yield Served(url, engine, home, app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        engine.close()
