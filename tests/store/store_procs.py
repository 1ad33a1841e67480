"""Start store_child.py as a real second process and read its step lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("store_child.py")


class Child:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )

    def expect(self, line: str) -> None:
        got = self.proc.stdout.readline().strip()
        if got != line:
            self.proc.kill()
            raise AssertionError(f"child printed {got!r}, expected {line!r}; stderr: {self.proc.stderr.read()}")

    def line(self) -> str:
        return self.proc.stdout.readline().strip()

    def finish(self) -> int:
        """Close stdin (the child's cue to release) and wait for it to exit."""
        self.proc.stdin.close()
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)
