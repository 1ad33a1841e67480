"""Webhooks on approval requests and run ends: recorded first, sent off the run's path, retried.

``attach(store, home)`` (the Engine calls it when it opens a store) listens to what the
event writer commits (``engine.events.COMMITTED``, and the takeovers that end a run in
engine/runtime/runner.py). The listener only picks the watched event types and hands them to
this store's ``Dispatcher`` thread through a bounded queue: a run never waits for a webhook,
and a failing one cannot fail it. The dispatcher finds the endpoints (``notify:`` in
``<home>/config.yaml``, and the run's pipeline's ``spec.notify`` at the run's pinned
revision), records one delivery per event and endpoint (engine/notify_outbox.py), then POSTs:

    POST <url>                                     Content-Type: application/json
    X-Agentform-Event: approval.requested          X-Agentform-Delivery: <id> (same on retries)
    X-Agentform-Timestamp: <unix seconds>          X-Agentform-Signature-256: sha256=<hex>
    {"id", "type", "createdAt", "run": {id, target, status, ...}, "event": {seq, ts, path, data}}

The signature is HMAC-SHA256 under the endpoint's secret of ``<timestamp>.<body>``. A 2xx
answer delivers; a connection error, a timeout, 408, 429 or 5xx is retried with doubling
backoff up to the endpoint's ``maxAttempts``; any other answer fails the delivery at once
(a redirect is not followed: the body and its signature go to the configured URL only).
Deliveries left pending when a process exits are sent by the next process that opens the
store (serve and workers sweep every ``SWEEP_S``). The body passes the redactor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine import notify_outbox as outbox
from agentform.engine.notify_settings import EVENTS, Endpoint, NotifySettings, read

__all__ = ["Dispatcher", "attach", "deliveries", "detach", "dispatcher", "expect"]

log = logging.getLogger("agentform.notify")

MAX_QUEUED = 1000            # events waiting for the dispatcher; more are dropped (and logged)
MAX_BODY = 64 * 1024         # bytes of one payload (long strings are cut first)
MAX_TEXT = 4096              # characters of one string in the payload's event data
RESPONSE_READ = 64 * 1024    # bytes of an answer read
SWEEP_S = 30.0               # how often a process looks for deliveries other processes left
LEASE_S = 30.0               # an attempt's lease beyond its timeout (a dead sender's is retried)
KEEP_S = 30 * 86400.0        # finished deliveries are kept this long
RETRYABLE = frozenset({408, 425, 429})

_dispatchers: dict[int, Dispatcher] = {}
_lock = threading.Lock()


_OPENER: Any = None   # built at the first send: every process that opens a store attaches the
                      # sender, and urllib.request (http.client, email) would cost each ~15 ms


def _opener() -> Any:
    global _OPENER
    if _OPENER is None:
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None   # urllib raises HTTPError with the 3xx code

        _OPENER = urllib.request.build_opener(NoRedirect)
    return _OPENER


class Dispatcher:
    """One store's webhook sender: a daemon thread, started at the first watched event."""

    def __init__(self, store: Any, home: Path, settings: NotifySettings):
        self.store, self.home, self.settings = store, home, settings
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._graphs: dict[tuple[str, int], list[Endpoint]] = {}
        self._closed = False
        self._pruned = False
        self.sweep = False

    # -- the writer's side: look, hand over, never wait ------------------------------------------
    def offer(self, events: list[Any]) -> None:
        for event in events:
            if event.type in EVENTS and (self.settings.endpoints or event.run_id in _expected):
                try:
                    self._queue.put_nowait(event)
                except queue.Full:
                    self.dropped += 1
                    log.warning("webhooks: %d events queued already; %s of run %s is not notified",
                                MAX_QUEUED, event.type, event.run_id)
                    continue
                self.start()

    def start(self, *, sweep: bool = False) -> None:
        """Run the thread (again); ``sweep``: keep it looking for due deliveries every ``SWEEP_S``
        even when idle (long-running processes: serve, workers)."""
        with self._start_lock:
            self.sweep = self.sweep or sweep
            if (self._thread is None or not self._thread.is_alive()) and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="agentform-notify", daemon=True)
                self._thread.start()

    def _idle_exit(self) -> bool:
        """End the thread when nothing is queued or pending (no thread outlives its work, so a
        store closed by its owner has no reader left); a later event starts another."""
        with self._start_lock:
            if self.sweep or self._closed or not self._queue.empty():
                return False
            try:
                if outbox.next_due(self.store) is not None:
                    return False
            except Exception:  # noqa: BLE001 - a closed or failing store: nothing more to do here
                pass
            self._thread = None
            return True

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout``) until what was handed over is recorded and attempted once."""
        with self._start_lock:
            idle = self._thread is None or not self._thread.is_alive()
        if idle and self._queue.empty():
            return True
        self.start()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 5.0, *, reopen: bool = False) -> None:
        """Drain, then stop the thread: it must not touch the store once its owner closes it.
        ``reopen``: a later event starts the thread again (the store stays open)."""
        deadline = time.monotonic() + timeout
        self.drain(timeout)
        with self._start_lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            # An attempt under way ends within its endpoint's timeout; the store waits for it.
            thread.join(max(deadline - time.monotonic(), 0) + 60.0)
        if reopen:
            with self._start_lock:
                self._thread, self._closed, self.sweep = None, False, False

    # -- the dispatcher's thread ------------------------------------------------------------------
    def _loop(self) -> None:
        if not self._pruned:
            self._pruned = True
            try:
                outbox.prune(self.store, time.time() - KEEP_S)
            except Exception:  # noqa: BLE001 - a store that cannot prune still sends
                log.exception("webhooks: pruning old deliveries failed")
        while True:
            try:
                item = self._queue.get(timeout=self._wait())
            except queue.Empty:
                item = False
            items = [item]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = [i for i in items if i not in (None, False) and not isinstance(i, threading.Event)]
            try:
                if events:
                    self._record(events)
                if not self._closed or any(isinstance(i, threading.Event) for i in items):
                    self._send_due()
            except Exception:  # noqa: BLE001 - the thread outlives a store hiccup; rows stay pending
                log.exception("webhooks: dispatch failed; pending deliveries are retried")
            for i in items:
                if isinstance(i, threading.Event):
                    i.set()
            if None in items or self._idle_exit():
                return

    def _wait(self) -> float:
        if self._closed:
            return 0.01
        try:
            nxt = outbox.next_due(self.store)
        except Exception:  # noqa: BLE001
            return SWEEP_S
        return SWEEP_S if nxt is None else min(max(nxt - time.time(), 0.01), SWEEP_S)

    def _record(self, events: list[Any]) -> None:
        now = time.time()
        rows = []
        for event in events:
            try:
                run = self.store.get_run(event.run_id)
            except Exception:  # noqa: BLE001 - a run deleted since: nothing to tell
                continue
            for endpoint in self._endpoints(run):
                if event.type not in endpoint.events:
                    continue
                delivery_id = hashlib.sha256(f"{run.id}:{event.seq}:{endpoint.url}".encode()).hexdigest()[:24]
                body = payload(delivery_id, event, run, now)
                rows.append((delivery_id, run.id, event.seq, event.type, endpoint.url,
                             json.dumps(endpoint.to_dict()), body, endpoint.max_attempts, now))
        if rows:
            outbox.insert(self.store, rows)

    def _endpoints(self, run: Any) -> list[Endpoint]:
        found = list(self.settings.endpoints)
        if run.target.startswith("pipeline/"):
            key = (run.target, run.revision)
            if key not in self._graphs:
                self._graphs[key] = self._pipeline_endpoints(run)
            found += self._graphs[key]
        return found

    def _pipeline_endpoints(self, run: Any) -> list[Endpoint]:
        from agentform.engine.graph import Graph
        from agentform.specs import ResourceKey

        _, namespace, name = run.target.split("/")
        raw = self.store.get_graph(ResourceKey("Pipeline", namespace, name), run.revision)
        if raw is None:
            return []
        graph = Graph.model_validate(raw)
        node = graph.pipelines.get(graph.root)
        return self.settings.for_pipeline(node.spec.notify, namespace) if node is not None else []

    def _send_due(self) -> None:
        while True:
            batch = outbox.due(self.store, time.time())
            if not batch:
                return
            for delivery, endpoint_json, body in batch:
                endpoint = Endpoint.from_dict(json.loads(endpoint_json))
                if outbox.claim(self.store, delivery, time.time() + endpoint.timeout + LEASE_S):
                    self._attempt(delivery, endpoint, body.encode("utf-8"))

    def _attempt(self, delivery: outbox.Delivery, endpoint: Endpoint, body: bytes) -> None:
        from agentform.engine.redaction import REDACTOR

        attempts = delivery.attempts + 1
        try:
            key = self._key(endpoint)
        except Exception as exc:  # noqa: BLE001 - recorded as this attempt's error, retried
            code, error = None, f"signing key: {exc}"
        else:
            code, error = send(endpoint, delivery, body, key)
        now = time.time()
        if code is not None and 200 <= code < 300:
            status, next_at = "delivered", None
        elif (code is None or code >= 500 or code in RETRYABLE) and attempts < endpoint.max_attempts:
            status, next_at = "pending", now + endpoint.delay(attempts)
        else:
            status, next_at = "failed", None
        if status != "delivered":
            log.warning("webhook %s (%s of run %s), attempt %d: %s", REDACTOR.text(endpoint.url), delivery.event,
                        delivery.run_id, attempts, REDACTOR.text(error or f"HTTP {code}"))
        outbox.finish_attempt(self.store, delivery.id, status=status, code=code,
                              error=REDACTOR.text(error) if error else None, next_at=next_at, now=now)

    def _key(self, endpoint: Endpoint) -> str | None:
        """The endpoint's signing key, read now (None: unsigned); RuntimeError when unreadable."""
        source = endpoint.secret
        if source is None:
            return None
        if "fromEnv" in source:
            import os

            from agentform.engine.redaction import register

            value = os.environ.get(source["fromEnv"])
            if not value:
                raise RuntimeError(f"the signing key's variable {source['fromEnv']} is not set")
            register(value)
            return value
        from agentform.engine.secrets import SecretSource, resolve
        from agentform.specs import ResourceKey

        ref = source["secretRef"]
        record = self.store.get_resource(ResourceKey("Secret", ref["namespace"], ref["name"]))
        if record is None:
            raise RuntimeError(f"the signing key's Secret {ref['namespace']}/{ref['name']} is not applied")
        return resolve(SecretSource.from_document(record.spec), home=self.home)


def send(endpoint: Endpoint, delivery: outbox.Delivery, body: bytes,
         key: str | None = None) -> tuple[int | None, str | None]:
    """One POST; (HTTP status or None, error text or None)."""
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "agentform-webhook",
               "X-Agentform-Event": delivery.event, "X-Agentform-Delivery": delivery.id,
               "X-Agentform-Timestamp": stamp}
    if key:
        headers["X-Agentform-Signature-256"] = "sha256=" + signature(key, stamp, body)
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint.url, data=body, method="POST", headers=headers)
    try:
        with _opener().open(request, timeout=endpoint.timeout) as answer:
            answer.read(RESPONSE_READ)
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc)) or type(exc).__name__


def signature(key: str, stamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<stamp>.<body>`` under ``key`` (what receivers recompute)."""
    return hmac.new(key.encode("utf-8"), stamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def payload(delivery_id: str, event: Any, run: Any, now: float) -> str:
    """The JSON body of one delivery: bounded, redacted, the same bytes on every attempt."""
    from agentform.engine.redaction import REDACTOR

    data = {
        "id": delivery_id, "type": event.type, "createdAt": _iso(now),
        "run": {"id": run.id, "target": run.target, "status": run.status, "revision": run.revision,
                "thread": run.thread, "tokensIn": run.tokens_in, "tokensOut": run.tokens_out,
                "costUsd": run.cost_usd, "error": run.error},
        "event": {"seq": event.seq, "ts": _iso(event.ts), "path": event.path, "data": _bounded(event.data)},
    }
    text = json.dumps(REDACTOR.data(data), sort_keys=True, default=str)
    if len(text.encode("utf-8")) > MAX_BODY:
        data["event"]["data"] = {"truncated": True}
        text = json.dumps(REDACTOR.data(data), sort_keys=True, default=str)
    return text


def _bounded(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if depth > 8:
        return "…"
    if isinstance(value, dict):
        return {str(k): _bounded(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth + 1) for v in value[:100]]
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# -- the registry: one dispatcher per open store ------------------------------------------------

def attach(store: Any, home: str | Path) -> Dispatcher:
    """Listen to ``store``'s committed events (once); sends what earlier processes left pending.
    UsageError when ``notify:`` in ``<home>/config.yaml`` is wrong."""
    from agentform.engine.events import COMMITTED

    with _lock:
        found = _dispatchers.get(id(store))
        if found is not None and found.store is store:
            return found
        found = _dispatchers[id(store)] = Dispatcher(store, Path(home), read(home))
        if _on_commit not in COMMITTED:
            COMMITTED.append(_on_commit)
    try:
        if outbox.next_due(store) is not None:
            found.start()
    except Exception:  # noqa: BLE001 - a store without the table yet (an older process) sends nothing
        log.debug("webhooks: no outbox in this store", exc_info=True)
    return found


def dispatcher(store: Any) -> Dispatcher | None:
    found = _dispatchers.get(id(store))
    return found if found is not None and found.store is store else None


def detach(store: Any, timeout: float = 5.0) -> None:
    """Stop listening to ``store``; waits (at most ``timeout``) for first attempts under way."""
    with _lock:
        found = _dispatchers.pop(id(store), None)
    if found is not None and found.store is store:
        found.close(timeout)


def deliveries(store: Any, run_id: str | None = None, limit: int = 100) -> list[outbox.Delivery]:
    return outbox.deliveries(store, run_id, limit)


def _on_commit(store: Any, events: list[Any]) -> None:
    found = _dispatchers.get(id(store))
    if found is not None and found.store is store:
        found.offer(events)
        if _expected:
            for event in events:
                if event.type in _RUN_ENDS:
                    _expected.discard(event.run_id)


# Runs whose own pipeline has webhooks, while this process executes them. Without ``notify:`` in
# config.yaml only their events are handed to the sender: a run with no webhook costs the writer
# nothing more than this lookup (no sender thread, no store query per run).
_expected: set[str] = set()
_RUN_ENDS = frozenset({"run.completed", "run.failed", "run.cancelled"})


def expect(run_id: str, graph: Any = None) -> None:
    """Before a run's events are written: hand them to the sender when its root pipeline has
    ``spec.notify`` (``graph`` None: always, as for a takeover of a run this process does not
    execute, whose pipeline the sender looks up itself)."""
    if graph is not None:
        node = graph.pipelines.get(graph.root) if graph.pipelines else None
        if node is None or not getattr(node.spec, "notify", None):
            return
    _expected.add(run_id)
