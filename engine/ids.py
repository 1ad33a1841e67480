"""Sortable run ids (ULID-style), made at the edge: 48-bit milliseconds + 80 random bits.

Ids are lower-case Crockford base32 (26 characters), so they sort by creation time and a
short unique prefix is easy to type. Ids made in one process in the same millisecond
still sort in creation order (the random part is incremented, as in ULID's monotonic mode).
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(now: float | None = None, randomness: bytes | None = None) -> str:
    """A new sortable id; ``now`` (seconds) and ``randomness`` (10 bytes) may be given for determinism."""
    global _last
    millis = int((time.time() if now is None else now) * 1000)
    rand = int.from_bytes(randomness if randomness is not None else os.urandom(10), "big")
    with _lock:
        last_ms, last_rand = _last
        if millis <= last_ms and randomness is None:
            millis, rand = last_ms, (last_rand + 1) & ((1 << 80) - 1)
        _last = (millis, rand)
    return _encode(millis, 10) + _encode(rand, 16)


new_run_id = new_id
