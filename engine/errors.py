"""Errors, split by who must act (the manifest author, the operator of the engine, the run).

    AgentformError            anything the CLI prints as ``error: message`` (exit 1)
    ├── ManifestError         the manifests are wrong: carries Diagnostics (file:line:col)
    ├── UsageError            a command was called wrongly (bad flag value, unknown kind)
    ├── NotFound              a named resource, run or revision does not exist
    ├── StoreError            the state store cannot be opened, migrated or written
    │   ├── LockHeld          another apply holds the lock (names the holder)
    │   └── RunTakenOver      another process owns the run now (its owner epoch moved on)
    ├── PlanStale             a saved plan no longer matches the store
    ├── PlanDigestMismatch    a saved plan was edited, made for another store, or not the expected one
    └── RunError              a run cannot start or failed (budget, script, template)
        ├── BudgetExceeded    a budget ran out (names the budget and its holder)
        └── WorkspaceError    a workspace cannot be provisioned or used
            ├── WorkspaceBusy another run holds it (names the holder)
            └── PathRefused   a tool path leaves the workspace
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

# Anything but printable ASCII is looked at (rarely: most messages are ASCII); see printable().
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e]")
_SUSPECT_LINE = re.compile(r"[^\x20-\x7e]")
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_char(found: re.Match) -> str:
    import unicodedata

    char = found.group()
    if unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with control, bidi and other invisible characters escaped (``\\u202e``, ``\\x1b``).

    Errors echo what users and models wrote; printed raw, a U+202E or an ESC sequence could
    reorder or recolour the terminal line and make an error read as something else (Trojan
    Source, CVE-2021-42574). ``one_line`` escapes newlines and tabs too (a diagnostic is one line).
    """
    if text.isascii() and text.isprintable():
        return text
    return (_SUSPECT_LINE if one_line else _SUSPECT).sub(_escape_char, text)


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem at ``file:line:col`` (1-based); ``line`` 0 means the whole file."""

    file: str
    line: int
    col: int
    message: str
    severity: Severity = "error"
    code: str = field(default="", compare=False)

    def __str__(self) -> str:
        file = printable(self.file, one_line=True)
        where = f"{file}:{self.line}:{self.col}" if self.line else file
        prefix = "" if self.severity == "error" else "warning: "
        return f"{where}: {prefix}{printable(self.message, one_line=True)}"

    def to_dict(self) -> dict:
        return {
            "file": self.file, "line": self.line, "col": self.col,
            "severity": self.severity, "message": self.message, "code": self.code,
        }


class AgentformError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


class ManifestError(AgentformError):
    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class UsageError(AgentformError):
    pass


class NotFound(AgentformError):
    pass


class StoreError(AgentformError):
    pass


class LockHeld(StoreError):
    def __init__(self, holder: str):
        self.holder = holder
        super().__init__(f"another apply is in progress (lock held by {holder}); retry, or pass --lock-timeout")


class RunTakenOver(StoreError):
    """The run's owner epoch is not the one expected: the loser of a takeover, or a fenced writer."""

    def __init__(self, run_id: str, owner: str | None, status: str, epoch: int, message: str | None = None):
        self.run_id, self.owner, self.status, self.epoch = run_id, owner, status, epoch
        super().__init__(message or f"run {run_id} is already being continued by {owner or 'another process'}"
                         + ("" if status in ("running", "waiting") else f" (it is {status} now)"))


class PlanStale(AgentformError):
    pass


class KnowledgeError(AgentformError):
    """A knowledge base could not be indexed or searched (sources, embedding model, Qdrant)."""


class PlanDigestMismatch(AgentformError):
    pass


class RunError(AgentformError):
    pass


class BudgetExceeded(RunError):
    def __init__(self, budget: str, holder: str, limit: float, used: float):
        self.budget, self.holder, self.limit, self.used = budget, holder, limit, used
        super().__init__(f"budget {budget} of {holder or 'the run'} exceeded: used {used:g} of {limit:g}")


class WorkspaceError(RunError):
    """A workspace cannot be provisioned or used (a missing sandbox, a vanished container)."""


class WorkspaceBusy(WorkspaceError):
    """Another run holds the workspace (``--no-wait``, or the wait ran out); names the holder."""

    def __init__(self, workspace: str, holder: str):
        self.workspace, self.holder = workspace, holder
        super().__init__(f"workspace {workspace} is in use by {holder}; wait for it to finish, "
                         "or run again without --no-wait to wait for it")


class PathRefused(WorkspaceError):
    """A workspace tool path leaves the workspace (``..``, absolute, a symlink or hardlink out)."""

    def __init__(self, path: str, why: str):
        self.path, self.why = path, why
        super().__init__(f"path '{path}' refused: {why}; use a path relative to the workspace root")
