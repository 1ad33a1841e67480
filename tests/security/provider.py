"""A fake OpenAI-compatible provider on 127.0.0.1 that echoes the API key it is sent.

Model ``echo`` streams a reply holding the key in 3-character chunks; model ``denied``
answers 401 with the key repeated at many offsets in a long message (so that a cut at any
length would leave part of it). Every key received is recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class EchoProvider:
    def __init__(self) -> None:
        self.keys: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                provider.keys.append(key)
                model = body.get("model", "")
                if model == "denied":
                    words = " ".join(f"{'x' * n}{key}" for n in range(12))
                    payload = json.dumps({"error": {"message": f"Incorrect API key provided: {words}",
                                                    "type": "invalid_request_error", "code": 401}}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                text = f"Your key is {key}; keep it safe."
                base = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0, "model": model}
                chunks = [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]
                chunks += [{"index": 0, "delta": {"content": text[i:i + 3]}, "finish_reason": None}
                           for i in range(0, len(text), 3)]
                chunks.append({"index": 0, "delta": {}, "finish_reason": "stop"})
                for choice in chunks:
                    self.wfile.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> EchoProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
