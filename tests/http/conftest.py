"""A real ``serve``: uvicorn on a free 127.0.0.1 port, in a thread of this process with its own
event loop, over an Engine on the test's store; tests talk to it with httpx.

``served(store_url, tmp_path, **create_app_options)`` is a context manager yielding a
``Served`` (``url``, ``engine``, ``home``); ``serve_factory`` wraps it as a fixture.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from http_serving import Served, served


@pytest.fixture
def serve_factory(store_url, tmp_path):
    stack = contextlib.ExitStack()

    def start(**options: Any) -> Served:
        return stack.enter_context(served(store_url, tmp_path / "home", **options))

    with stack:
        yield start
