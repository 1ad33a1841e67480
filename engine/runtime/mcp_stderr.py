"""A stdio tool server's stderr: redacted line by line before it reaches its log file.

The server writes into a pipe (the MCP client hands the write end to the process as fd 2);
a reader thread splits what arrives into lines, passes each full line through the process
redactor and only then appends it to ``<home>/logs/toolservers/<namespace>-<name>.log``, so
no raw byte reaches the disk. A line longer than ``MAX_LINE`` bytes is cut (its rest is
dropped up to the next newline), which bounds the reader's memory whatever the server prints.
The last lines stay in memory for an error that says why a server did not start.

A thread, not a task: the pipe must be drained even while the event loop is busy, or a
server that logs a lot blocks on a full pipe.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

from agentform.engine.redaction import REDACTOR, redact_text

MAX_LINE = 8192       # bytes of one stderr line kept; the rest of a longer line is dropped
TAIL_LINES = 10       # lines kept for error messages
TAIL_WIDTH = 300      # characters of each of those lines shown in an error
CUT_MARK = " [line cut]"


class StderrLog:
    """One server start's stderr pipe, its reader thread and its log file."""

    def __init__(self, path: Path, header: str):
        self.path = path
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - the thread closes it
        self._write(header)
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
        buffer = b""
        skipping = False  # inside the dropped rest of a cut line
        try:
            with os.fdopen(fd, "rb", buffering=0) as pipe:
                while chunk := pipe.read(65536):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if not skipping:
                            self._line(line)
                        skipping = False
                    if len(buffer) > MAX_LINE:
                        if not skipping:
                            self._line(buffer)
                        skipping, buffer = True, b""
                if buffer and not skipping:
                    self._line(buffer)
        finally:
            self._file.close()

    def _line(self, raw: bytes) -> None:
        if len(raw) > MAX_LINE:
            self._write_cut(raw[:MAX_LINE].decode("utf-8", "replace"))
        else:
            self._write(raw.decode("utf-8", "replace"))

    def _write(self, line: str) -> None:
        line = redact_text(line.rstrip("\r"))
        self._file.write(line + "\n")
        self.tail.append(line)

    def _write_cut(self, head: str) -> None:
        # ``head`` may end with the first part of a secret whose rest is dropped: the redactor
        # cannot match it, so drop as many characters as a secret's longest form has, minus one.
        shown = redact_text(head)
        if REDACTOR.longest > 1:
            shown = shown[: max(len(shown) - (REDACTOR.longest - 1), 0)]
        self._file.write(shown + CUT_MARK + "\n")
        self.tail.append(shown + CUT_MARK)
