"""A small OpenAI-compatible server on 127.0.0.1 for the knowledge tests (stdlib http.server).

A copy of tests/runtime/openai_stub.py (chat completions: each model name has a queue of
replies) with ``POST /v1/embeddings`` added: every input gets a deterministic vector, a
hashed bag of its words (``DIM`` buckets, L2-normalised), so texts that share words are
near each other, as with a real embedding model. Every embedding request's inputs are
recorded in ``embedded`` (one list per HTTP request), so tests count what was re-embedded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIM = 256
_WORD = re.compile(r"[a-z0-9]+")


def bag_of_words(text: str) -> list[float]:
    """The stub's embedding: word counts hashed into DIM buckets, unit length."""
    vector = [0.0] * DIM
    for word in _WORD.findall(text.lower()):
        vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OpenAIStub:
    def __init__(self) -> None:
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.embedded: list[list[str]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/").endswith("/embeddings"):
                    payload = json.dumps(stub._embeddings(body, dict(self.headers))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                reply = stub._next(body, dict(self.headers))
                if "status" in reply:
                    payload = json.dumps({"error": {"message": reply.get("message", "stub error"),
                                                    "type": "stub", "code": reply["status"]}}).encode()
                    self.send_response(reply["status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in stub._chunks(body.get("model", ""), reply):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            queue = self.replies.get(body.get("model", ""), [])
            if not queue:
                return {"status": 400, "message": f"stub has no reply left for model {body.get('model')}"}
            return queue.pop(0)

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

    @staticmethod
    def _chunks(model: str, reply: dict[str, Any]):
        base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        content = reply.get("content")
        if content:
            for i, word in enumerate(content.split(" ")):
                piece = word if i == 0 else " " + word
                yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for n, (name, args) in enumerate(reply.get("tool_calls", [])):
            text = json.dumps(args)
            yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{
                "index": n, "id": f"call_stub_{n}", "type": "function",
                "function": {"name": name, "arguments": ""}}]}, "finish_reason": None}]}
            half = len(text) // 2
            for part in (text[:half], text[half:]):
                yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{
                    "index": n, "function": {"arguments": part}}]}, "finish_reason": None}]}
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        tokens_in, tokens_out = reply.get("usage", (10, 5))
        yield {**base, "choices": [], "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                                                "total_tokens": tokens_in + tokens_out}}
