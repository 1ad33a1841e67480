"""'Did you mean' hints for misspelt names (difflib)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: object, options: Iterable[str]) -> str | None:
    """The option most like ``word``, if any is close enough to be a likely typo."""
    if not isinstance(word, str):
        return None
    choices = [o for o in options if isinstance(o, str)]
    lowered = {o.lower(): o for o in choices}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    best = closest(word, options)
    return f" (did you mean '{best}'?)" if best else ""
