"""Followers of live runs in one process: one reader per run, fanned out to every follower.

``serve`` may hold hundreds of SSE clients on one run. Each follower waiting on the store by
itself would poll SQLite, or hold a thread, once per client; here a ``Feed`` per followed run
does the waiting (``store.wait_for_events``: SQLite's indexed poll, PostgreSQL's
LISTEN/NOTIFY) on a thread of the hub's own pool, keeps the newest events in memory and
wakes its followers. A follower that starts behind what the feed holds (a reconnect with an
old ``Last-Event-ID``) first pages through the store, then joins the feed: each follower
gets every event after its cursor exactly once, in order.

The feed ends when the run's stream ends (``may_continue`` says no more segment follows a
terminal event); it stops reading when its last follower leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentform.engine.store.base import Event

FINISHED = ("run.completed", "run.failed", "run.cancelled")
KEEP = 4096            # events a feed keeps in memory for followers that lag a little
CATCH_UP_PAGE = 1000   # a lagging follower reads the store in pages of this many events
WAIT_S = 0.5           # one store wait; short so that feeds beyond the pool's threads take turns
MIN_WAKE_S = 0.05      # a feed wakes its followers at most this often: each wake is a write per
                       # follower (bench/serve.py: 500 followers on 2 busy cores did best at 50 ms)
THREADS = 32           # runs followed at once without taking turns


class Feed:
    """One run's live tail: events ``base+1 .. last`` in memory, a future per change."""

    def __init__(self, run_id: str, last_seq: int, loop: asyncio.AbstractEventLoop):
        self.run_id = run_id
        self.base = last_seq           # events[i] has seq base + 1 + i
        self.events: list[Event] = []
        self.done = False
        self.error: BaseException | None = None
        self.followers = 0
        self.task: asyncio.Task | None = None
        self._loop = loop
        self._changed: asyncio.Future = loop.create_future()

    @property
    def last(self) -> int:
        return self.base + len(self.events)

    def since(self, after: int) -> list[Event]:
        return self.events[after - self.base:] if after >= self.base else []

    def add(self, batch: list[Event]) -> None:
        self.events.extend(batch)
        if len(self.events) > 2 * KEEP:   # amortised trim: followers further back read the store
            cut = len(self.events) - KEEP
            del self.events[:cut]
            self.base += cut
        self._notify()

    def finish(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, self._loop.create_future()
        if not changed.done():
            changed.set_result(None)

    async def changed(self) -> None:
        await asyncio.shield(self._changed)


class Hub:
    """The feeds of one event loop over one store."""

    def __init__(self, store: Any, may_continue: Callable[[str, int], bool], *,
                 on_latency: Callable[[float], None] | None = None):
        self._store = store
        self._may_continue = may_continue
        self._on_latency = on_latency
        self._feeds: dict[str, Feed] = {}
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="agentform-follow")
        self.followers = 0

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Every event after ``after``, then live ones, until the run's stream ends."""
        async for batch in self.batches(run_id, after):
            for event in batch:
                yield event

    async def batches(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        """``follow`` by the batch: what is there at each wake comes as one list (a server
        writes it to a client in one send)."""
        loop = asyncio.get_running_loop()
        feed = self._feeds.get(run_id)
        if feed is None:
            run = await loop.run_in_executor(self._pool, self._store.get_run, run_id)
            feed = self._feeds.get(run_id)   # another follower may have made it meanwhile
            if feed is None:
                feed = self._feeds[run_id] = Feed(run_id, run.last_seq, loop)
                feed.task = loop.create_task(self._read(feed), name=f"agentform-feed-{run_id}")
        feed.followers += 1
        self.followers += 1
        try:
            while True:
                if after < feed.base:   # behind what the feed keeps: the store has it
                    page = await loop.run_in_executor(self._pool, self._store.read_events, run_id, after,
                                                      CATCH_UP_PAGE)
                    page = [e for e in page if e.seq > after]
                    if page:
                        after = page[-1].seq
                        yield page
                        continue
                new = feed.since(after)
                if new:
                    after = new[-1].seq
                    yield new
                    continue
                if feed.done:
                    if feed.error is not None:
                        raise feed.error
                    return
                await feed.changed()
        finally:
            feed.followers -= 1
            self.followers -= 1
            if feed.followers <= 0 and self._feeds.get(run_id) is feed:
                del self._feeds[run_id]
                if feed.task is not None and not feed.done:
                    feed.task.cancel()

    async def _read(self, feed: Feed) -> None:
        loop = asyncio.get_running_loop()
        store, after = self._store, feed.last
        woke = 0.0
        try:
            while True:
                gap = MIN_WAKE_S - (time.monotonic() - woke)
                if gap > 0:
                    await asyncio.sleep(gap)
                batch = await loop.run_in_executor(self._pool, store.wait_for_events, feed.run_id, after, WAIT_S)
                if batch:
                    woke = time.monotonic()
                    if self._on_latency is not None:
                        now = time.time()
                        for event in batch:
                            self._on_latency(now - event.ts)
                    after = batch[-1].seq
                    feed.add(batch)
                # A terminal event ends a segment, not always the stream (a resume may follow it).
                if (not batch or batch[-1].type in FINISHED) and \
                        not await loop.run_in_executor(self._pool, self._may_continue, feed.run_id, after):
                    feed.finish()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # the store failed: followers see it and end their streams
            feed.finish(exc)

    def close(self) -> None:
        for feed in list(self._feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        self._feeds.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
