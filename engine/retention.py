"""Retention: ``gc`` deletes finished runs past the retention period, their events and artifacts.

What goes: runs ``succeeded``, ``failed`` or ``cancelled`` that ended (``finished_at``)
before ``now - older_than``. ``older_than`` defaults to ``retention:`` in
``<home>/config.yaml`` (an age: ``30d``, ``12h``, ``7d12h``), else 30 days. What stays:

- every run that is queued, running or waiting, and every run that ended since the cutoff;
- a thread only goes as a whole: one of its runs staying keeps all of them;
- a fork's origin (``forkedFrom`` in the fork's ``run.started``) stays while the fork does,
  with the origin's own thread and origin, to a fixed point.

The store rows of a deleted run: the run, its events and its webhook deliveries (the
``notifications`` outbox). Artifacts: its detached process's output (``<home>/detached/<run>.log``)
and its sections of the stdio tool servers' stderr logs (``<home>/logs/toolservers/*.log``,
each server start under a ``--- run <id>: ...`` header). Those logs are shared by runs and
servers append to them (O_APPEND) while gc works, so a log is compacted in place: the kept
sections are written back from the start, then what servers appended meanwhile, then the file
is cut; two gc processes take turns through ``flock``. A line a server writes in the few
microseconds between the last size check and the cut can be lost; lines of a concurrent run
that fell inside a deleted run's section go with it.

The store work is bounded (engine/store/retention.py): at most ``EVENT_BATCH`` events and
``RUN_BATCH`` runs per transaction, a long stream deleted in seq windows, each delete
re-checking that the run is still finished. On SQLite, whose one writer the workers share,
gc pauses between batches as long as the last batch held the lock, so a waiting append gets
its turn (the busy handler retries while gc sleeps).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from agentform.engine.errors import UsageError

DEFAULT_RETENTION = "30d"
EVENT_BATCH = 1000       # events deleted per transaction
RUN_BATCH = 200          # runs deleted per transaction (an IN list of ids)
_HEADER = re.compile(rb"^--- run ([0-9a-z]+): ")
_READ_LINE = 1 << 16     # bytes read per line at most (servers' lines are cut at 8,192 characters)


@dataclass(frozen=True)
class GcRun:
    """A run gc deletes (or, with ``dry_run``, would delete)."""

    id: str
    target: str
    status: str
    thread: str | None
    ended_at: float
    events: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "status": self.status, "thread": self.thread,
                "endedAt": self.ended_at, "events": self.events}


@dataclass(frozen=True)
class GcKept:
    """An expired run that stays, and why."""

    id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason}


@dataclass
class GcReport:
    """What ``gc`` deleted (or would delete, ``dry_run``)."""

    older_than: str                       # the age as written (option or setting)
    cutoff: float                         # epoch seconds: runs that ended before this expired
    dry_run: bool
    runs: list[GcRun] = field(default_factory=list)
    kept: list[GcKept] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)       # threads deleted whole
    artifacts: list[str] = field(default_factory=list)     # files removed, or logs compacted
    log_sections: int = 0                 # tool-server log sections of deleted runs
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(r.events for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"olderThan": self.older_than, "cutoff": self.cutoff, "dryRun": self.dry_run,
                "runs": [r.to_dict() for r in self.runs], "events": self.events,
                "threads": self.threads, "kept": [k.to_dict() for k in self.kept],
                "artifacts": self.artifacts, "logSections": self.log_sections,
                "seconds": round(self.seconds, 3)}


def retention_setting(home: str | Path) -> str:
    """``retention:`` of ``<home>/config.yaml`` (checked), else the default ``30d``."""
    from agentform.engine.template_settings import home_config

    value = home_config(home).get("retention")
    if value is None:
        return DEFAULT_RETENTION
    where = f"{Path(home) / 'config.yaml'}: retention"
    if not isinstance(value, str):
        raise UsageError(f"{where}: {value!r} is not an age; write one such as 30d, 12h or 7d12h")
    age_seconds(value, where)
    return value.strip()


def age_seconds(text: str, where: str) -> float:
    from agentform.specs.common import parse_age

    try:
        seconds = parse_age(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not an age; write one such as 30d, 12h or 7d12h") from None
    if seconds <= 0:
        raise UsageError(f"{where}: {text!r} must be more than 0")
    return seconds


def collect(store: Any, home: str | Path, older_than: str | None = None, *, dry_run: bool = False,
            now: float | None = None) -> GcReport:
    """Delete (or, ``dry_run``, list) what expired; see the module docstring."""
    started = time.monotonic()
    text = older_than.strip() if older_than is not None else retention_setting(home)
    seconds = age_seconds(text, "--older-than" if older_than is not None else
                          f"{Path(home) / 'config.yaml'}: retention")
    now = time.time() if now is None else now
    report = GcReport(older_than=text, cutoff=now - seconds, dry_run=dry_run)
    going, report.kept, report.threads = _plan(store, report.cutoff)
    logs = _toolserver_logs(Path(home))
    if dry_run:
        report.runs = going
        ids = {r.id for r in going}
        report.artifacts = [str(p) for p in _detached_logs(Path(home), ids)]
        for log in logs:
            sections = _count_sections(log, ids)
            if sections:
                report.log_sections += sections
                report.artifacts.append(str(log))
    else:
        report.runs = _delete(store, going)
        ids = {r.id for r in report.runs}
        for path in _detached_logs(Path(home), ids):
            path.unlink(missing_ok=True)
            report.artifacts.append(str(path))
        for log in logs:
            sections = compact_log(log, ids) if ids else 0
            if sections:
                report.log_sections += sections
                report.artifacts.append(str(log))
        gone = {r.thread for r in report.runs if r.thread}
        report.threads = [t for t in report.threads if t in gone]
    report.seconds = time.monotonic() - started
    return report


def _plan(store: Any, cutoff: float) -> tuple[list[GcRun], list[GcKept], list[str]]:
    """(runs that go, expired runs that stay with the reason, threads that go whole)."""
    expired = {r.id: r for r in store.expired_runs(cutoff)}
    kept: dict[str, str] = {}
    by_thread: dict[str, list[str]] = {}
    for run in expired.values():
        if run.thread:
            by_thread.setdefault(run.thread, []).append(run.id)
    for thread in store.threads_still_alive(by_thread, cutoff):
        for run_id in by_thread[thread]:
            kept[run_id] = f"thread {thread} has a run that has not expired"
    forks = store.fork_origins(min(r.created_at for r in expired.values())) if expired else []
    changed = True
    while changed:   # a kept fork keeps its origin, which keeps its thread and its own origin
        changed = False
        for fork, origin in forks:
            if origin in expired and origin not in kept and (fork not in expired or fork in kept):
                kept[origin] = f"its fork {fork} is kept"
                changed = True
                thread = expired[origin].thread
                for run_id in by_thread.get(thread or "", []):
                    kept.setdefault(run_id, f"thread {thread} keeps run {origin}, a fork's origin")
    going = [GcRun(r.id, r.target, r.status, r.thread, r.ended_at, r.events)
             for r in expired.values() if r.id not in kept]
    threads = sorted(t for t, ids in by_thread.items() if not any(i in kept for i in ids))
    return going, [GcKept(i, why) for i, why in sorted(kept.items())], threads


def _batches(runs: list[GcRun]) -> Iterator[tuple[list[GcRun], int, int | None]]:
    """(runs, after_seq, upto_seq): short runs together, a long stream in windows of seqs."""
    group: list[GcRun] = []
    size = 0
    for run in runs:
        if run.events > EVENT_BATCH:
            for low in range(0, run.events, EVENT_BATCH):
                high = low + EVENT_BATCH
                yield [run], low, (None if high >= run.events else high)
            continue
        if group and (size + run.events > EVENT_BATCH or len(group) >= RUN_BATCH):
            yield group, 0, None
            group, size = [], 0
        group.append(run)
        size += run.events
    if group:
        yield group, 0, None


def _delete(store: Any, runs: list[GcRun]) -> list[GcRun]:
    """Delete ``runs`` batch by batch; the runs actually deleted (one resumed meanwhile stays)."""
    pause = type(store).__name__ == "SqliteStore"
    deleted: list[GcRun] = []
    for group, after, upto in _batches(runs):
        began = time.monotonic()
        last = upto is None
        _, count = store.delete_finished_events([r.id for r in group], after, upto, delete_runs=last)
        if last:
            if count == len(group):
                deleted.extend(group)
            else:   # a run was resumed meanwhile (its owner had died): it is no longer finished
                deleted.extend(r for r in group if not _exists(store, r.id))
        if pause:
            # Not a synchronisation: SQLite has one writer, and a worker's append waiting in its
            # busy handler needs a gap to get in; gc takes at most half of the writer's time.
            time.sleep(min(time.monotonic() - began, 0.05))
    return deleted


def _exists(store: Any, run_id: str) -> bool:
    from agentform.engine.errors import NotFound

    try:
        return store.get_run(run_id).id == run_id
    except NotFound:
        return False


def _detached_logs(home: Path, ids: set[str]) -> list[Path]:
    folder = home / "detached"
    return [folder / f"{i}.log" for i in sorted(ids) if (folder / f"{i}.log").is_file()]


def _toolserver_logs(home: Path) -> list[Path]:
    folder = home / "logs" / "toolservers"
    return sorted(p for p in folder.glob("*.log") if p.is_file()) if folder.is_dir() else []


def _lines(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The lines of the first ``size`` bytes of ``file`` (the last one may lack its newline)."""
    left = size
    while left > 0:
        line = file.readline(min(_READ_LINE, left))
        if not line:
            return
        left -= len(line)
        yield line


def _count_sections(path: Path, ids: set[str]) -> int:
    with open(path, "rb") as file:
        return sum(1 for line in _lines(file, os.fstat(file.fileno()).st_size)
                   if (m := _HEADER.match(line)) and m.group(1).decode() in ids)


def compact_log(path: Path, ids: set[str]) -> int:
    """Drop the sections of runs ``ids`` from a tool-server log, in place (servers may be
    appending to it); the number of sections dropped."""
    import fcntl
    import tempfile

    try:
        file = open(path, "r+b")  # noqa: SIM115 - closed below, after the lock
    except FileNotFoundError:
        return 0
    with file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)   # one gc at a time; servers do not lock
        size = os.fstat(file.fileno()).st_size
        dropped = 0
        keep = True
        with tempfile.TemporaryFile() as kept:
            for line in _lines(file, size):
                header = _HEADER.match(line)
                if header:
                    keep = header.group(1).decode() not in ids
                    dropped += not keep
                if keep:
                    kept.write(line)
            if not dropped:
                return 0
            kept.seek(0)
            file.seek(0)
            while chunk := kept.read(1 << 20):
                file.write(chunk)
        position = file.tell()
        while True:   # what servers appended since `size`, moved down after the kept part
            file.flush()
            end = os.fstat(file.fileno()).st_size
            if end == size:
                file.truncate(position)
                return dropped
            file.seek(size)
            tail = file.read(end - size)
            file.seek(position)
            file.write(tail)
            position += len(tail)
            size = end
