"""The event stream's writer: one group-commit writer per store, shared by every run in the process.

``RunStream.emit`` assigns the next ``seq`` of its run under one lock and queues the event;
a writer thread takes whatever is queued (every few milliseconds, or at once when many are
waiting) and writes it with ``store.append_events`` in one transaction, together with the
runs' record updates (totals, ``last_seq``, status). ``await stream.durable()`` waits until
everything emitted so far is committed: the agent loop uses it before a tool call with an
external side effect, and the runner before it returns.

Each append carries the stream's owner ``epoch``: the store writes a run's events only
while the run's epoch is still that number, so a process whose run was taken over writes
nothing more. A stream whose write failed stops for good: none of its later events is
batched again, and its next ``emit`` raises the stored error (its executor stops there).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from agentform.engine.errors import StoreError
from agentform.engine.redaction import REDACTOR
from agentform.engine.store.base import Event

EVENT_TYPES = frozenset({
    "run.started", "run.queued", "run.resumed", "stage.skipped", "run.waiting", "run.completed", "run.failed",
    "run.cancelled", "stage.started", "stage.completed", "agent.started", "agent.completed",
    "message.delta", "message.completed", "tool.call", "tool.result", "handoff",
    "approval.requested", "approval.resolved", "budget.exceeded", "usage", "checkpoint",
    "agent.failed", "stage.failed", "workspace.changed", "toolserver.started", "toolserver.ready",
    "workspace.waiting",
})
TERMINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled", "run.waiting"})

OnEvent = Callable[[Event], None]
_new_event = object.__new__
# Called as fn(store, events) after events are committed (engine/notify.py listens). A listener
# runs on the writer's thread: it must only look and hand over, never wait or write.
COMMITTED: list[Callable[[Any, list[Event]], None]] = []


def announce(store: Any, events: list[Event]) -> None:
    """Tell the COMMITTED listeners about ``events``, now in ``store``; a listener's error is its own."""
    for listener in COMMITTED:
        try:
            listener(store, events)
        except Exception:  # noqa: BLE001, S110 - a listener never fails the writer
            pass


class RunStream:
    """One run's side of the writer: seq assignment, totals, pending record updates."""

    __slots__ = ("run_id", "seq", "durable_seq", "tokens_in", "tokens_out", "cost_usd", "error", "epoch",
                 "_writer", "_updates", "_waiters", "_on_event", "_clock")

    def __init__(self, writer: EventWriter, run_id: str, last_seq: int, on_event: OnEvent | None,
                 clock: Callable[[], float], epoch: int | None = None):
        self.run_id = run_id
        self.epoch = epoch   # the owner epoch this process writes under (None: unchecked)
        self.seq = last_seq
        self.durable_seq = last_seq
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_usd = 0.0
        self.error: BaseException | None = None   # a failed write of this run's events
        self._writer = writer
        self._updates: dict[str, Any] = {}
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._on_event = on_event
        self._clock = clock

    def emit(self, type: str, path: str, data: dict[str, Any], **updates: Any) -> Event:
        """Queue one event (and optional run-record updates that ride the same batch)."""
        if self.error is not None:   # a stream whose write failed stops: its executor stops here
            self._raise_if_failed()
        if REDACTOR.pattern is not None:  # a secret is in play: nothing leaves unredacted
            data = REDACTOR.data(data)
            if updates:
                updates = REDACTOR.data(updates)
        writer = self._writer
        with writer._lock:
            self.seq += 1
            # Event is a frozen dataclass: filling its __dict__ skips six frozen __setattr__ calls.
            event = _new_event(Event)
            event.__dict__.update(run_id=self.run_id, seq=self.seq, ts=self._clock(), type=type,
                                  path=path, data=data)
            writer._pending.append(event)
            writer._owners.append(self)
            if updates:
                self._updates.update(updates)
            writer._dirty[self] = None
            if writer._sleeping:
                writer._sleeping = False
                writer._wake.set()
        if self._on_event is not None:
            self._on_event(event)
        return event

    def add_usage(self, tokens_in: int, tokens_out: int, cost_usd: float) -> None:
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.cost_usd += cost_usd

    def update(self, **fields: Any) -> None:
        """Run-record fields to write with the next batch."""
        if REDACTOR.pattern is not None:
            fields = REDACTOR.data(fields)
        with self._writer._lock:
            self._updates.update(fields)
            self._writer._dirty[self] = None
            self._writer._sleeping = False
            self._writer._wake.set()

    async def durable(self) -> None:
        """Wait until every event emitted so far is committed (raises StoreError if the write failed)."""
        self._raise_if_failed()
        target = self.seq
        if self.durable_seq >= target:
            return
        if self._writer.commit_inline() and (self.durable_seq >= target or self.error is not None):
            self._raise_if_failed()
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._writer._lock:
            if self.durable_seq >= target:
                future.set_result(None)
            else:
                self._waiters.append((target, loop, future))
                self._writer._dirty[self] = None
                self._writer._urgent = True  # someone waits: no group-commit window
                self._writer._sleeping = False
                self._writer._wake.set()
        await future
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        error = self.error
        if error is None:
            return
        if isinstance(error, StoreError):   # typed already (RunTakenOver, a full disk...): keep its type
            raise error
        raise StoreError(f"events of run {self.run_id} could not be written: {error}") from error

    def flush_sync(self, timeout: float = 30.0) -> None:
        """Block until everything emitted is committed (for code outside an event loop)."""
        deadline = time.monotonic() + timeout
        while self.durable_seq < self.seq and self.error is None:
            self._writer._sleeping = False
            self._writer._wake.set()
            if time.monotonic() > deadline:
                raise StoreError("events were not written in time")
            with self._writer._committed:
                self._writer._committed.wait(0.01)
        self._raise_if_failed()

    def stop(self, error: BaseException) -> None:
        """Stop this stream for good: its queued events are dropped, later emits raise ``error``."""
        with self._writer._lock:
            self._writer._drop(self, error)

    def close(self) -> None:
        """Forget this run once its last batch is written (a stream with queued events stays)."""
        with self._writer._lock:
            if self.durable_seq >= self.seq or self.error is not None:
                self._writer._dirty.pop(self, None)


class EventWriter:
    """Group-commit writer over ``store.append_events`` (a daemon thread)."""

    _by_store: dict[int, EventWriter] = {}
    _registry_lock = threading.Lock()

    def __init__(self, store: Any, *, window: float = 0.005, batch_max: int = 5000):
        self.store = store
        self.window = window
        self.batch_max = batch_max
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._committed = threading.Condition()
        self._commit_lock = threading.Lock()
        self._pending: list[Event] = []        # in emission order (the order a batch is inserted in)
        self._owners: list[RunStream] = []     # the stream of each queued event
        self._creates: list[Any] = []
        self._sleeping = True
        self._urgent = False
        self._dirty: dict[RunStream, None] = {}
        self._thread = threading.Thread(target=self._loop, name="agentform-events", daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, store: Any) -> EventWriter:
        """The process-wide writer of ``store`` (made on first use)."""
        with cls._registry_lock:
            writer = cls._by_store.get(id(store))
            if writer is None or writer.store is not store:
                writer = cls._by_store[id(store)] = cls(store)
            return writer

    def open(self, run_id: str, last_seq: int = 0, on_event: OnEvent | None = None,
             clock: Callable[[], float] = time.time, epoch: int | None = None) -> RunStream:
        """A stream continuing ``run_id`` after ``last_seq``, written under owner ``epoch``."""
        return RunStream(self, run_id, last_seq, on_event, clock, epoch)

    def _take(self) -> tuple[list[Event], list[RunStream], list[tuple[RunStream, int, dict[str, Any] | None]], list[Any]]:
        """The queued events in emission order and their streams, each dirty stream's record
        fields (None: a stopped stream, whose events were dropped when it stopped), the new runs."""
        with self._lock:
            batch, self._pending = self._pending, []
            owners, self._owners = self._owners, []
            parts = []
            for stream in self._dirty:
                fields, stream._updates = stream._updates, {}
                if stream.error is None:
                    fields.update(tokens_in=stream.tokens_in, tokens_out=stream.tokens_out,
                                  cost_usd=round(stream.cost_usd, 10), last_seq=stream.seq)
                    parts.append((stream, stream.seq, fields))
                else:
                    parts.append((stream, stream.seq, None))   # only its waiters learn the error
            self._dirty = {}
            creates, self._creates = self._creates, []
            if not batch and not parts and not creates:
                self._sleeping = True
                self._wake.clear()
            return batch, owners, parts, creates

    def _drop(self, stream: RunStream, error: BaseException) -> None:
        """Stop ``stream`` (under ``_lock``): none of its queued events is batched again."""
        stream.error = stream.error or error
        if stream in self._owners:
            kept = [(e, s) for e, s in zip(self._pending, self._owners, strict=True) if s is not stream]
            self._pending = [e for e, _ in kept]
            self._owners = [s for _, s in kept]

    def create_run(self, run: Any) -> None:
        """Record a new run in the writer's next transaction batch (before its first events)."""
        with self._lock:
            # Not urgent: the run row rides the next group commit with the first events (a
            # short run's whole stream, row included, then commits in one transaction).
            self._creates.append(run)
            if self._sleeping:
                self._sleeping = False
                self._wake.set()

    def _loop(self) -> None:
        # The group-commit window: events of the next few milliseconds join the batch (a
        # short run's whole stream usually commits at once, inline, when the run ends).
        while True:
            self._wake.wait()
            if self.window and not self._urgent:
                time.sleep(self.window)
            self._urgent = False
            with self._commit_lock:
                self._commit_once()

    def commit_inline(self) -> bool:
        """Commit what is pending in the caller's thread when no commit is under way.

        A caller about to wait for durability (a run's last event) saves two thread
        hand-offs this way; batches still commit one at a time and in order.
        """
        if not self._commit_lock.acquire(blocking=False):
            return False
        try:
            self._commit_once()
        finally:
            self._commit_lock.release()
        return True

    def _commit_once(self) -> None:
        batch, owners, parts, creates = self._take()
        if not batch and not parts and not creates:
            return
        failed: dict[RunStream, BaseException] = {}
        live = [part for part in parts if part[2] is not None]
        updates = {part[0].run_id: part[2] for part in live}
        if len(updates) < len(live):
            # Rare: two streams of one run (an old owner and its successor in this process):
            # each stream alone, under its own epoch.
            failed = self._create_and_append_each(creates, live, batch, owners)
        elif live or creates:
            # New runs ride the events' transaction: one commit (on PostgreSQL one round trip).
            epochs = {part[0].run_id: part[0].epoch for part in live if part[0].epoch is not None}
            try:
                self.store.append_events(batch, run_updates=updates, new_runs=creates, epochs=epochs)
            except Exception as exc:  # noqa: BLE001 - one run's bad write must not sink the others
                if len(live) == 1 and not creates:
                    failed[live[0][0]] = exc
                else:   # nothing was written: find which runs and streams fail, one by one
                    failed = self._create_and_append_each(creates, live, batch, owners)
        if COMMITTED and batch:
            # Before the waiters of durable() wake: what a run's end hands over (a webhook) is
            # handed over before its process can move on to exit.
            announce(self.store, batch if not failed else
                     [e for e, s in zip(batch, owners, strict=True) if s not in failed])
        self._release(parts, failed)

    def _create_and_append_each(self, creates: list[Any], live: list[tuple[RunStream, int, dict[str, Any] | None]],
                                batch: list[Event], owners: list[RunStream]) -> dict[RunStream, BaseException]:
        """Create each new run alone, then append stream by stream; the streams that failed."""
        failed: dict[RunStream, BaseException] = {}
        not_created: dict[str, BaseException] = {}
        for run in creates:
            try:
                self.store.create_run(run)
            except Exception as exc:  # noqa: BLE001 - reported to that run's waiters
                not_created[run.id] = exc
        rest = []
        for part in live:
            if part[0].run_id in not_created:
                failed[part[0]] = not_created[part[0].run_id]
            else:
                rest.append(part)
        failed.update(self._append_each(rest, batch, owners))
        return failed

    def _append_each(self, live: list[tuple[RunStream, int, dict[str, Any] | None]], batch: list[Event],
                     owners: list[RunStream]) -> dict[RunStream, BaseException]:
        """Append a batch again stream by stream, to find which streams' writes fail."""
        by_stream: dict[RunStream, list[Event]] = {}
        for event, stream in zip(batch, owners, strict=True):
            by_stream.setdefault(stream, []).append(event)
        failed = {}
        for stream, _, fields in live:
            epochs = {stream.run_id: stream.epoch} if stream.epoch is not None else None
            try:
                self.store.append_events(by_stream.get(stream, []), run_updates={stream.run_id: fields},
                                         epochs=epochs)
            except Exception as exc:  # noqa: BLE001 - reported to that stream's waiters
                failed[stream] = exc
        return failed

    def _release(self, parts: list[tuple[RunStream, int, dict[str, Any] | None]],
                 failed: dict[RunStream, BaseException]) -> None:
        ready = []
        with self._lock:
            for stream, seq, _ in parts:
                error = failed.get(stream)
                if error is not None:
                    self._drop(stream, error)   # its stream has a gap now: stop it
                elif stream.error is None:
                    stream.durable_seq = max(stream.durable_seq, seq)
                keep = []
                for target, loop, future in stream._waiters:
                    if stream.durable_seq >= target or stream.error is not None:
                        ready.append((loop, future))
                    else:
                        keep.append((target, loop, future))
                stream._waiters = keep
        for loop, future in ready:
            loop.call_soon_threadsafe(_resolve, future)
        with self._committed:
            self._committed.notify_all()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
