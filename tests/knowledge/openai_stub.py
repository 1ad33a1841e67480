"""The tests' OpenAI-compatible server (tests/runtime/openai_stub.py) with ``POST /v1/embeddings``.

Chat completions work as there (a queue of replies per model). An embedding request gets one
deterministic vector per input, a hashed bag of its words (``DIM`` buckets, unit length), so
texts that share words are near each other, as with a real embedding model. The inputs of
every embedding request are recorded in ``embedded`` (one list per HTTP request), so tests
count what was (re-)embedded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from runtime.openai_stub import OpenAIStub as ChatStub

DIM = 256
_WORD = re.compile(r"[a-z0-9]+")


def bag_of_words(text: str) -> list[float]:
    """The stub's embedding: word counts hashed into DIM buckets, unit length."""
    vector = [0.0] * DIM
    for word in _WORD.findall(text.lower()):
        vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OpenAIStub(ChatStub):
    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[list[str]] = []
        stub, chat = self, self.server.RequestHandlerClass

        class Handler(chat):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                if not self.path.rstrip("/").endswith("/embeddings"):
                    return super().do_POST()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                payload = json.dumps(stub._embeddings(body, dict(self.headers))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None

        self.server.RequestHandlerClass = Handler

    def _embeddings(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        with self._lock:
            self.embedded.append(inputs)
            self.headers.append({k.lower(): v for k, v in headers.items()})
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(text)} for i, text in enumerate(inputs)]
        tokens = sum(len(_WORD.findall(t)) for t in inputs)
        return {"object": "list", "model": body.get("model"), "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
