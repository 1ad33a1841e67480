"""A stdio tool server's stderr: redacted before it reaches its log file.

The server writes into a pipe (the MCP client hands the write end to the process as fd 2).
A reader thread passes what arrives through a ``DeltaHold`` (engine/redaction.py): the stream
is redacted as a whole, so a secret split across writes or lines (a PEM key, a JSON
credential) is masked too, and only then is it appended to
``<home>/logs/toolservers/<namespace>-<name>.log``: no raw byte reaches the disk. After
``IDLE_FLUSH`` seconds of silence the held tail is released (redacted as far as it goes), so
the log shows a waiting server's last words; only a server that stops for that long in the
middle of printing a secret could show its first part. A line longer than ``MAX_LINE``
characters is cut after redaction (its rest is dropped up to the next newline), which bounds
what is kept whatever the server prints. The last lines stay in memory for an error that
says why a server did not start.

A thread, not a task: the pipe must be drained even while the event loop is busy, or a
server that logs a lot blocks on a full pipe.
"""

from __future__ import annotations

import codecs
import os
import select
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

from agentform.engine.redaction import DeltaHold, redact_text

MAX_LINE = 8192       # characters of one stderr line kept; the rest of a longer line is dropped
IDLE_FLUSH = 1.0      # seconds of silence after which the held-back tail is written
TAIL_LINES = 10       # lines kept for error messages
TAIL_WIDTH = 300      # characters of each of those lines shown in an error
CUT_MARK = " [line cut]"


class StderrLog:
    """One server start's stderr pipe, its reader thread and its log file."""

    def __init__(self, path: Path, header: str):
        self.path = path
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - the reader thread closes it
        self._file.write(redact_text(header) + "\n")
        self._line: list[str] = []   # the current line's first TAIL_WIDTH characters, for ``tail``
        self._width = 0              # characters of the current line written so far
        self._skipping = False       # inside the dropped rest of a cut line
        read_fd, write_fd = os.pipe()  # both ends non-inheritable: only the server gets the write end
        self.writer: IO[Any] | None = os.fdopen(write_fd, "w")
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True,
                                        name=f"stderr:{path.name}")
        self._thread.start()

    def spawned(self) -> None:
        """The server process holds its own copy of the write end now (or never will): close
        ours, so that the reader sees end-of-file when the server exits."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    async def drained(self, timeout: float = 2.0) -> None:
        """Wait (bounded: a child of the server may keep the pipe open) until the reader has
        written everything the exited server printed."""
        import asyncio

        self.spawned()
        await asyncio.to_thread(self._thread.join, timeout)

    def last_lines(self) -> list[str]:
        return [line if len(line) <= TAIL_WIDTH else line[: TAIL_WIDTH - 1] + "…" for line in list(self.tail)]

    def _pump(self, fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        hold = DeltaHold()
        try:
            with os.fdopen(fd, "rb", buffering=0) as pipe:
                while True:
                    if not select.select([pipe], [], [], IDLE_FLUSH)[0]:
                        self._put(hold.flush())
                        continue
                    chunk = pipe.read(65536)
                    if not chunk:
                        break
                    self._put(hold.feed(decoder.decode(chunk)))
            self._put(hold.feed(decoder.decode(b"", final=True)) + hold.flush())
            if self._width or self._skipping:
                self._end_line()
        finally:
            self._file.close()

    def _put(self, text: str) -> None:
        """Append redacted ``text`` to the log, cutting lines longer than ``MAX_LINE``."""
        if not text:
            return
        for i, part in enumerate(text.split("\n")):
            if i:
                self._end_line()
            if self._skipping or not part:
                continue
            room = MAX_LINE - self._width
            shown = part[:room]
            self._file.write(shown)
            self._width += len(shown)
            if sum(map(len, self._line)) < TAIL_WIDTH:
                self._line.append(shown[:TAIL_WIDTH])
            if len(part) > room:
                self._file.write(CUT_MARK)
                self._line.append(CUT_MARK)
                self._skipping = True
        self._file.flush()

    def _end_line(self) -> None:
        self._file.write("\n")
        self.tail.append("".join(self._line).rstrip("\r"))
        self._line, self._width, self._skipping = [], 0, False
