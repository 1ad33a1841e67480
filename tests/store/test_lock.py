"""The apply lock across real processes, on both backends."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading

import pytest

from agentform.engine.errors import LockHeld
from agentform.engine.store.sqlite import SqliteStore

from .store_procs import Child

ALICE = "alice@build-7 pid 123 since 12:00:01"


def test_held_lock_names_its_holder(store, store_url):
    child = Child("lock", store_url, ALICE)
    try:
        child.expect("locked")
        with pytest.raises(LockHeld) as held:
            with store.apply_lock("bob", timeout=0):
                pass
        assert held.value.holder == ALICE
        assert ALICE in str(held.value)
        assert child.finish() == 0
    finally:
        child.kill()
    with store.apply_lock("bob"):          # free again once the holder released it
        pass


def test_waiting_apply_gets_the_lock_when_the_holder_releases(store, store_url):
    child = Child("lock", store_url, ALICE)
    try:
        child.expect("locked")
        with pytest.raises(LockHeld):
            with store.apply_lock("bob", timeout=0):
                pass
        got: list[str] = []

        def wait_for_lock() -> None:
            with store.apply_lock("bob", timeout=60):
                got.append("bob")

        waiter = threading.Thread(target=wait_for_lock)
        waiter.start()
        assert child.finish() == 0            # the holder releases and exits
        waiter.join(timeout=60)
        assert got == ["bob"]
    finally:
        child.kill()


def test_another_process_waits_for_our_release(store, store_url):
    with store.apply_lock("bob"):
        child = Child("lock", store_url, ALICE, "60")
    try:
        child.expect("locked")
        assert child.finish() == 0
    finally:
        child.kill()


def test_lock_of_a_dead_holder_is_taken_over(store, store_url):
    child = Child("lock-die", store_url, ALICE)
    child.expect("locked")
    assert child.proc.wait(timeout=60) == 0    # died holding the lock
    with store.apply_lock("bob", timeout=0):
        with pytest.raises(LockHeld) as held:
            with store.apply_lock("carol", timeout=0):
                pass
        assert held.value.holder == "bob"


def test_lock_is_released_when_the_body_fails(store):
    with pytest.raises(RuntimeError):
        with store.apply_lock("bob"):
            raise RuntimeError("apply failed")
    with store.apply_lock("carol"):
        pass


def _plant_lock(path, host: str, pid: int, pid_start: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO apply_lock (id, holder, host, pid, pid_start, token, acquired_at) "
                     "VALUES (1, ?, ?, ?, ?, 'x', 0)", (ALICE, host, pid, pid_start))


def test_sqlite_lock_of_a_reused_pid_is_taken_over(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    _plant_lock(tmp_path / "state.db", socket.gethostname(), os.getpid(), "1")   # our pid, another start time
    with store.apply_lock("bob"):
        pass
    store.close()


def test_sqlite_lock_held_on_another_host_is_respected(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    _plant_lock(tmp_path / "state.db", "some-other-host", 1, "")
    with pytest.raises(LockHeld) as held:
        with store.apply_lock("bob", timeout=0.1):
            pass
    assert held.value.holder == ALICE
    store.close()
