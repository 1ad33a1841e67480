"""Redaction: the one choke point that every byte the engine writes passes.

Every secret value resolved in this process (``engine/secrets.py`` registers it the moment
it is read) is added to one process-wide ``Redactor``, together with its common encodings
(JSON-escaped, URL-encoded, base64 and base64url at each of the three byte alignments, so
that a value embedded after any prefix is still found). Writers call ``redact_text`` on
text and ``redact_data`` on JSON-like data before anything leaves the process: event data
before it is queued, run-record updates, log files the engine writes, CLI output, error
messages. Redaction applies to the full text, before any cutting or reformatting. A
streamed message passes ``DeltaHold``, which keeps back the tail of a delta stream that
could be the start of a secret until the next chunk (or the end) shows what follows.

A value shorter than ``MIN_SECRET_LEN`` cannot be redacted safely (it would match ordinary
text): such a Secret is ``Ready=False`` (``ValueTooShort``) and refused at use, so it never
gets here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LEN = 8


def encoded_forms(value: str) -> set[str]:
    """``value`` and the forms in which it commonly reappears in text."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             quote(value, safe=""), quote_plus(value, safe="")}
    raw = value.encode()
    for pad in range(3):
        # Base64 groups 3 bytes into 4 characters: after a prefix of 0, 1 or 2 bytes the value
        # shows as a different string. Keep the characters made only of the value's bits.
        start = -(-8 * pad // 6)
        end = 8 * (pad + len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            inner = encode(b"\0" * pad + raw).decode()[start:end]
            if len(inner) >= MIN_SECRET_LEN:
                forms.add(inner)
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


class Redactor:
    """The secret values known to this process and one compiled pattern over all their forms."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._forms: set[str] = set()
        # None while nothing is registered: writers test it inline, so that the common case
        # (no secret in play) costs one attribute read.
        self.pattern: re.Pattern[str] | None = None
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self.longest = 0   # the longest form: how much of a delta stream to hold back

    def add(self, value: str) -> None:
        """Redact ``value`` (and its encodings) from now on in everything this process writes."""
        if not value or len(value) < MIN_SECRET_LEN or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            self._forms |= encoded_forms(value)
            ordered = sorted(self._forms, key=len, reverse=True)
            self.longest = len(ordered[0])
            # The pattern first: a reader that sees the new forms must find a pattern covering them.
            self.pattern = re.compile("|".join(map(re.escape, ordered)))
            self._ordered = tuple(ordered)

    def clear(self) -> None:
        """Forget every value (tests: one test's secrets must not change the next one's stream)."""
        with self._lock:
            self._values, self._forms, self._ordered, self.pattern, self.longest = set(), set(), (), None, 0

    def __bool__(self) -> bool:
        return self.pattern is not None

    def text(self, text: str) -> str:
        forms = self._ordered
        if not forms or len(text) < MIN_SECRET_LEN:
            return text
        # ``in`` over a few literals is several times cheaper than a regex pass that finds
        # nothing, and nearly every text holds no secret: the pattern runs only on a hit.
        for form in forms:
            if form in text:
                return self.pattern.sub(MASK, text)  # type: ignore[union-attr]
        return text

    def data(self, value: Any) -> Any:
        """JSON-like ``value`` with every string (keys too) redacted: the same object when nothing
        changes or nothing is registered, else a copy of the containers that changed."""
        if self.pattern is None:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        # Strings are handled inline (most event values are short strings): a call per value
        # would cost more than the check itself.
        text = self.text
        if isinstance(value, str):
            return text(value) if len(value) >= MIN_SECRET_LEN else value
        if isinstance(value, dict):
            out = None
            for k, v in value.items():
                k2 = text(k) if type(k) is str and len(k) >= MIN_SECRET_LEN else k
                if type(v) is str:
                    v2 = text(v) if len(v) >= MIN_SECRET_LEN else v
                elif isinstance(v, (dict, list, tuple)):
                    v2 = self._walk(v)
                else:
                    v2 = v
                if out is None:
                    if k2 is k and v2 is v:
                        continue
                    out = {}   # the first change: copy what came before it, unchanged
                    for k0, v0 in value.items():
                        if k0 is k:
                            break
                        out[k0] = v0
                out[k2] = v2
            return value if out is None else out
        if isinstance(value, (list, tuple)):
            items = [self._walk(v) if not isinstance(v, (int, float, type(None))) else v for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return tuple(items) if isinstance(value, tuple) else items
        return value


class DeltaHold:
    """One delta stream's tail, held back until a secret split across chunks can be redacted.

    A secret cut in two (``sk-ca`` + ``nary...``) matches in neither chunk. ``feed`` returns
    what can be written now: everything but the last ``REDACTOR.longest - 1`` characters,
    redacted together with what was held. A secret that starts in the released part ends
    inside the text seen so far, so it was whole when redacted. ``flush`` releases the rest
    when the message completes. Nothing registered: every chunk passes at once, untouched.
    """

    __slots__ = ("_held", "_redactor")

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._held = ""
        self._redactor = redactor or REDACTOR

    def feed(self, chunk: str) -> str:
        redactor = self._redactor
        if redactor.pattern is None and not self._held:
            return chunk
        text = redactor.text(self._held + chunk)
        keep = max(redactor.longest - 1, 0)
        if len(text) <= keep:
            self._held = text
            return ""
        cut = len(text) - keep
        self._held = text[cut:]
        return text[:cut]

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._redactor.text(text) if text else text


REDACTOR = Redactor()


def register(value: str) -> None:
    REDACTOR.add(value)


def redact_text(text: str) -> str:
    return REDACTOR.text(text)


def redact_data(value: Any) -> Any:
    return REDACTOR.data(value)


class RedactingStream:
    """A text stream (stdout, stderr) through the redactor: what a process prints, its errors and
    tracebacks alike. While a secret is registered, a partial line waits for its end (or a
    flush) so that a value written in pieces is redacted whole."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        if REDACTOR.pattern is None and not self._partial:
            return self._stream.write(text)
        size = len(text)
        text = self._partial + text
        end = text.rfind("\n") + 1
        self._partial = text[end:]
        if end:
            self._stream.write(REDACTOR.text(text[:end]))
        return size

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            text, self._partial = self._partial, ""
            self._stream.write(REDACTOR.text(text))
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":
            # Bytes written to the raw buffer would pass unredacted: writers fall back to text.
            raise AttributeError(name)
        return getattr(self._stream, name)


def redact_std_streams() -> None:
    """Route this process's stdout and stderr through the redactor (once)."""
    import sys

    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
