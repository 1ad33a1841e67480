"""The GitOps loops of ``watch``: a folder (watchfiles) or a git ref (fetched on an interval).

Both sync once at start, then on every change: a folder when watchfiles reports changes
(grouped: a save-all or a checkout is one sync), a git ref when a fetch finds a commit other
than the last one settled (applied, unchanged or invalid; a failed sync is tried again at the
next tick). ``refresh`` (an asyncio.Event; the CLI sets it on SIGHUP) fetches at once, as a
webhook would; ``stop`` ends the loop. Every sync is recorded (sync.py) and handed to
``on_sync``; nothing raises out of a loop but cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentform.engine.errors import UsageError
from agentform.engine.gitops.git import GitError, GitSource, display_url
from agentform.engine.gitops.sync import SyncResult, record, sync_folder
from agentform.engine.overlays import watched_roots
from agentform.engine.store.base import Store

MIN_INTERVAL = 5.0          # seconds between two fetches of one remote, at least
DEBOUNCE_MS = 1600          # a burst of file changes is grouped for up to this long...
STEP_MS = 200               # ...ending when no change came for this long


@dataclass
class FolderWatch:
    folder: Path
    app: str
    prune: bool = False

    def sync(self, store: Store, home: Path) -> SyncResult:
        return sync_folder(store, self.folder, home=home, app=self.app, source=str(self.folder.resolve()),
                           prune=self.prune)


@dataclass
class GitWatch:
    source: GitSource
    app: str
    prune: bool = False

    def sync(self, store: Store, home: Path, skip: str | None = None) -> SyncResult | None:
        """Fetch; apply the tip unless it is ``skip`` (then None). A fetch that fails is recorded.
        Two watchers of one URL share its clone: each sync holds the clone's lock throughout."""
        with _locked(self.source.checkout.with_suffix(".lock")):
            return self._sync(store, home, skip)

    def _sync(self, store: Store, home: Path, skip: str | None) -> SyncResult | None:
        url = display_url(self.source.url)
        try:
            commit = self.source.fetch()
            if commit == skip:
                return None
            folder = self.source.check_out(commit)
        except GitError as exc:
            result = SyncResult(app=self.app, source=url, outcome="failed", at=time.time(), error=str(exc))
            with contextlib.suppress(Exception):    # the store may be what is down
                record(store, result, ref=self.source.ref, path=self.source.path)
            return result
        return sync_folder(store, folder, home=home, app=self.app, source=url, prune=self.prune,
                           commit=commit, ref=self.source.ref, subpath=self.source.path,
                           relative_to=self.source.checkout)


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_interval(seconds: float) -> float:
    if not seconds >= MIN_INTERVAL:
        raise UsageError(f"--interval {seconds:g}s: at least {MIN_INTERVAL:g}s between two fetches")
    return seconds


async def watch_git(store: Store, watch: GitWatch, *, home: Path, interval: float,
                    on_sync: Callable[[SyncResult], None] | None = None, stop: asyncio.Event | None = None,
                    refresh: asyncio.Event | None = None) -> None:
    check_interval(interval)
    settled: str | None = None
    stop = stop or asyncio.Event()
    wake = refresh or asyncio.Event()
    while not stop.is_set():
        result = await _guarded(watch.sync, store, home, settled, app=watch.app,
                                source=display_url(watch.source.url))
        if result is not None:
            if result.settled and result.commit is not None:
                settled = result.commit
            if on_sync is not None:
                on_sync(result)
        wake.clear()
        await _first(stop, wake, timeout=interval)


async def watch_folder(store: Store, watch: FolderWatch, *, home: Path,
                       on_sync: Callable[[SyncResult], None] | None = None, stop: asyncio.Event | None = None,
                       debounce_ms: int = DEBOUNCE_MS) -> None:
    try:
        import watchfiles
    except ImportError:
        raise UsageError("watch PATH needs the watchfiles package: pip install 'agentform[server]'") from None
    stop = stop or asyncio.Event()
    source = str(watch.folder.resolve())

    async def once() -> None:
        result = await _guarded(watch.sync, store, home, app=watch.app, source=source)
        if on_sync is not None:
            on_sync(result)

    # The engine's home may sit inside the folder: its database changes on every sync.
    ignore = watchfiles.DefaultFilter(ignore_paths=[str(Path(home).resolve())])
    # An overlay loads folders outside its own (its bases): every one of them is watched, and
    # the set is read again after each sync, since an edit of the overlay can change it.
    roots = watched_roots(watch.folder)

    def subscribe(folders: list[Path]):
        return watchfiles.awatch(*folders, watch_filter=ignore, debounce=debounce_ms, step=STEP_MS,
                                 stop_event=stop, ignore_permission_denied=True)

    changes = subscribe(roots)
    # Subscribe before the first sync, so that an edit made during it is not missed.
    first = asyncio.ensure_future(anext(changes))
    pending: asyncio.Future | None = first
    await asyncio.sleep(0)       # lets the watcher start
    try:
        await once()
        while not stop.is_set():
            try:
                await (pending or anext(changes))
            except StopAsyncIteration:
                return
            pending = None
            now = watched_roots(watch.folder)
            if now != roots:
                await changes.aclose()
                roots, changes = now, subscribe(now)
                pending = asyncio.ensure_future(anext(changes))
                await asyncio.sleep(0)
            await once()
    finally:
        if not first.done():
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await first
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await changes.aclose()


async def _guarded(fn, *args, app: str, source: str):
    """``fn(*args)`` in a thread; an error outside the manifests (the store down) becomes a failed
    result, since the loop must outlive it."""
    try:
        return await asyncio.to_thread(fn, *args)
    except Exception as exc:  # noqa: BLE001 - recorded in the result; the next tick tries again
        return SyncResult(app=app, source=source, outcome="failed", at=time.time(),
                          error=f"{type(exc).__name__}: {exc}")


async def _first(*events: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
