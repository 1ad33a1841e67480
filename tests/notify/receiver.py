"""A webhook receiver on 127.0.0.1 for the notify tests: records each POST, answers from a script.

``Receiver(codes=[500, 200])`` answers the first request 500, the second 200, and every later
one with the last code. ``wait(n)`` blocks (with a deadline) until ``n`` requests arrived.
``verify(request, key)`` recomputes the X-Agentform-Signature-256 header as a receiver would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    code: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    def __init__(self, codes: list[int] | None = None, port: int = 0):
        self.codes = list(codes or [200])
        self.requests: list[Received] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    index = len(receiver.requests)
                    code = receiver.codes[min(index, len(receiver.codes) - 1)]
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, code))
                    receiver._cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} webhook requests within {timeout}s, "
                                         f"expected {count}: {[r.headers.get('x-agentform-event') for r in self.requests]}")
                self._cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(request: Received, key: str) -> bool:
    """What a receiver does: HMAC-SHA256 of ``<timestamp>.<body>``, compared in constant time."""
    stamp = request.headers["x-agentform-timestamp"]
    expected = "sha256=" + hmac.new(key.encode(), stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-agentform-signature-256", ""))
