"""Documents into chunks of at most ``size`` characters, each with the line range it came from.

Headings first, then paragraphs, then characters: a Markdown section (``#`` to ``######``)
that fits is one piece; a longer one is split at blank lines; a paragraph still longer is cut
into windows of ``size`` characters, stepping ``size - overlap`` and preferring a cut at a
space. Consecutive pieces are packed into one chunk while they fit, so short sections travel
together; a chunk that continues a split section starts with the tail of the previous one
(up to ``overlap`` characters), so a sentence at a boundary is found from both sides. Lines
are 1-based and inclusive: what ``search_knowledge`` cites as ``path:start-end``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    start_line: int
    end_line: int
    heading: str = ""        # the heading of the section the chunk starts in


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int               # 0-based line index, inclusive
    end: int                 # exclusive
    section: int
    heading: str
    text: str | None = None  # a character window (not whole lines): its own text


def chunk_text(text: str, size: int, overlap: int) -> list[Chunk]:
    """The chunks of ``text`` (see the module docstring); none for a blank document."""
    lines = text.split("\n")
    pieces: list[_Piece] = []
    for number, (start, end, heading) in enumerate(_sections(lines)):
        if _length(lines, start, end) <= size:
            pieces.append(_Piece(start, end, number, heading))
            continue
        for p_start, p_end in _paragraphs(lines, start, end):
            if _length(lines, p_start, p_end) <= size:
                pieces.append(_Piece(p_start, p_end, number, heading))
            else:
                pieces.extend(_windows(lines, p_start, p_end, number, heading, size, overlap))
    return _pack(lines, pieces, size, overlap)


def _sections(lines: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, heading) of each section: a heading line up to the next (fences respected)."""
    starts: list[tuple[int, str]] = [(0, "")]
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            if i == 0:
                starts[0] = (0, match.group(2))
            else:
                starts.append((i, match.group(2)))
    bounds = [s for s, _ in starts[1:]] + [len(lines)]
    return [(start, end, heading) for (start, heading), end in zip(starts, bounds, strict=True)]


def _paragraphs(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """Runs of non-blank lines in [start, end)."""
    out: list[tuple[int, int]] = []
    first = None
    for i in range(start, end):
        if lines[i].strip():
            first = i if first is None else first
        elif first is not None:
            out.append((first, i))
            first = None
    if first is not None:
        out.append((first, end))
    return out


def _windows(lines: list[str], start: int, end: int, section: int, heading: str,
             size: int, overlap: int) -> list[_Piece]:
    """A long paragraph cut into windows of at most ``size`` characters, overlapping by ``overlap``."""
    text = "\n".join(lines[start:end])
    line_starts = [0]
    for line in lines[start:end - 1]:
        line_starts.append(line_starts[-1] + len(line) + 1)
    out: list[_Piece] = []
    pos = 0
    while pos < len(text):
        stop = min(pos + size, len(text))
        if stop < len(text):
            space = text.rfind(" ", pos + size // 2, stop)
            stop = space if space > pos else stop
        body = text[pos:stop].strip()
        if body:
            first, last = _line_of(line_starts, pos), _line_of(line_starts, max(stop - 1, pos))
            out.append(_Piece(start + first, start + last + 1, section, heading, body))
        if stop >= len(text):
            break
        pos = max(stop - overlap, pos + 1)
    return out


def _line_of(line_starts: list[int], offset: int) -> int:
    import bisect

    return bisect.bisect_right(line_starts, offset) - 1


def _pack(lines: list[str], pieces: list[_Piece], size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    current: list[_Piece] = []

    def emit() -> None:
        start, end = current[0].start, current[-1].end
        while start < end and not lines[start].strip():   # cite the lines that hold text
            start += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if start < end:
            chunks.append(Chunk("\n".join(lines[start:end]).strip(), start + 1, end, current[0].heading))

    for piece in pieces:
        if piece.text is not None:       # a window is a chunk by itself
            if current:
                emit()
                current = []
            chunks.append(Chunk(piece.text, piece.start + 1, piece.end, piece.heading))
            continue
        if current and _length(lines, current[0].start, piece.end) > size:
            emit()
            current = _tail(lines, current, piece, overlap, size)
        current.append(piece)
    if current:
        emit()
    return chunks


def _tail(lines: list[str], previous: list[_Piece], following: _Piece, overlap: int, size: int) -> list[_Piece]:
    """The last pieces of ``previous`` (same section as ``following``) to repeat, within ``overlap``."""
    kept: list[_Piece] = []
    for piece in reversed(previous[1:]):  # never all of it: each chunk moves forward
        if piece.section != following.section:
            break
        if (_length(lines, piece.start, previous[-1].end) > overlap
                or _length(lines, piece.start, following.end) > size):
            break
        kept.insert(0, piece)
    return kept


def _length(lines: list[str], start: int, end: int) -> int:
    return sum(len(line) + 1 for line in lines[start:end]) - 1 if end > start else 0
