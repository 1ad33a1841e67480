"""The embedded store: one SQLite file (``<home>/state.db``) in WAL mode.

Writes go through one connection under a process-wide lock with ``BEGIN IMMEDIATE``
(other processes wait on SQLite's busy timeout); reads use a small free list of
connections, so readers never wait for writers. Followers of a run poll an indexed query.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentform.engine.errors import LockHeld, StoreError

from ._sqlbase import SqlStore
from .base import Event
from .migrate import migrate_sqlite

BUSY_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.025


class SqliteStore(SqlStore):
    """The Store protocol on SQLite; safe for several threads and several processes."""

    _integrity = (sqlite3.IntegrityError,)

    def __init__(self, path: Path | str, *, migrate: bool = True):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the state store {self.path}: {exc}") from exc
        try:
            if migrate:
                migrate_sqlite(self._writer)
        except BaseException as exc:
            self._writer.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot migrate the state store {self.path}: {exc}") from exc
            raise
        self._wlock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = [self._writer]
        self._rlock = threading.Lock()
        self._appended = threading.Condition()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
            check_same_thread=False, cached_statements=256,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._wlock, self._rlock:
            # Only idle connections close here: closing one another thread is reading on
            # crashes the interpreter (SIGSEGV); a reader in use closes when it is handed back.
            idle = {id(conn) for conn in (self._writer, *self._readers)}
            for conn in self._all:
                if id(conn) in idle:
                    conn.close()
            self._all = [conn for conn in self._all if id(conn) not in idle]
            self._readers.clear()

    # -- hooks ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        with self._wlock:
            if self._closed:
                raise StoreError("the state store is closed")
            cur = self._writer.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            try:
                yield cur
            except sqlite3.Error as exc:
                _rollback(self._writer, exc)
                raise self._failure(exc) from exc
            except BaseException as exc:
                _rollback(self._writer, exc)
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except sqlite3.Error as exc:
                    _rollback(self._writer, exc)
                    raise self._failure(exc) from exc
        with self._appended:
            self._appended.notify_all()

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        """The StoreError for a failed write: SQLite's own text first, then what to do about it."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF   # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            hint = f"; free space on the disk that holds {self.path.parent} (what was committed before is intact)"
        elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            hint = f" (another writer held the write lock for over {BUSY_TIMEOUT_S:g} s)"
        else:
            hint = ""
        return StoreError(f"state store {self.path}: {exc}{hint}")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        with self._rlock:
            if self._closed:
                raise StoreError("the state store is closed")
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = self._connect()
            with self._rlock:
                self._all.append(conn)
        try:
            yield conn.cursor()
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc
        finally:
            with self._rlock:
                if not self._closed:
                    self._readers.append(conn)
                else:   # the store closed while this read ran (see close)
                    conn.close()
                    self._all = [c for c in self._all if c is not conn]

    def _dec(self, value: Any) -> Any:
        return None if value is None else json.loads(value)

    # -- followers -----------------------------------------------------------------------
    def wait_for_events(self, run_id: str, after: int, timeout: float) -> list[Event]:
        """Events after ``after``, polling every 25 ms (at once on an append in this process)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.read_events(run_id, after)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return events
            with self._appended:
                self._appended.wait(min(POLL_INTERVAL_S, remaining))

    # -- the apply lock ------------------------------------------------------------------
    @contextmanager
    def apply_lock(self, holder: str, timeout: float = 0.0) -> Iterator[None]:
        """Exclusive apply lock; raises LockHeld naming the holder when not had within ``timeout``."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            current = self._try_lock(holder, token)
            if current is None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(current)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            with self._write() as cur:
                cur.execute("DELETE FROM apply_lock WHERE token = ?", (token,))

    def _try_lock(self, holder: str, token: str) -> str | None:
        """Take the lock (or a dead holder's); None when taken, else the current holder."""
        host, pid = socket.gethostname(), os.getpid()
        with self._write() as cur:
            row = cur.execute("SELECT holder, host, pid, pid_start FROM apply_lock WHERE id = 1").fetchone()
            if row is not None and not (row[1] == host and not _alive(row[2], row[3])):
                return row[0]
            cur.execute(
                "INSERT OR REPLACE INTO apply_lock (id, holder, host, pid, pid_start, token, acquired_at) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (holder, host, pid, _process_start(pid), token, time.time()),
            )
        return None


def _rollback(conn: sqlite3.Connection, cause: BaseException) -> None:
    """Roll back what is still open without ever hiding ``cause``.

    SQLite ends the transaction by itself on some errors (a full disk, an I/O error): a
    ROLLBACK then fails with "no transaction is active", and raising that would replace
    the error that matters. A rollback that fails for another reason rides along as a note.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        cause.add_note(f"the rollback failed too: {exc}")


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks (Linux), to tell a reused pid apart; '' elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # The pid exists; it is the holder unless the pid was reused by a newer process.
    return not started or _process_start(pid) in ("", started)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (persistent: a later open finds it so and writes nothing).

    Switching needs the database to itself, and SQLite does not wait on its busy handler for
    it: a second process opening a fresh store while the first one migrates it gets "database
    is locked" at once. Such a process retries until the first one's transaction ends.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            contended = "locked" in str(exc) or "busy" in str(exc)
            if not contended or time.monotonic() > deadline:
                raise
            time.sleep(delay)   # a back-off between attempts, not a synchronisation
            delay = min(delay * 2, 0.1)
