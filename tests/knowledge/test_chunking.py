"""Chunking: sections, then paragraphs, then characters; every chunk within ``size``, its line
range exactly the lines its text comes from; neighbours of a split share up to ``overlap``."""

from __future__ import annotations

from agentform.engine.knowledge.chunking import chunk_text

DOC = """\
# Guide

Intro line one.
Intro line two.

## Install

Run the installer.

## Configure

""" + "\n\n".join(f"Paragraph {i} explains setting number {i} in some detail." for i in range(12)) + """

## Long

""" + " ".join(f"word{i}" for i in range(400)) + "\n"


def _lines(text: str, chunk) -> str:
    return "\n".join(text.split("\n")[chunk.start_line - 1:chunk.end_line])


def test_chunks_fit_and_cite_their_own_lines():
    chunks = chunk_text(DOC, 300, 60)
    assert len(chunks) > 5
    for chunk in chunks:
        assert 0 < len(chunk.text) <= 300
        assert 1 <= chunk.start_line <= chunk.end_line <= DOC.count("\n") + 1
        assert chunk.text in _lines(DOC, chunk), (chunk.start_line, chunk.end_line)


def test_short_sections_travel_together_and_headings_are_kept():
    chunks = chunk_text(DOC, 300, 60)
    first = chunks[0]
    assert first.heading == "Guide" and "Run the installer." in first.text   # Guide + Install fit in one
    assert {c.heading for c in chunks} >= {"Guide", "Configure", "Long"}
    configure = [c for c in chunks if c.heading == "Configure"]
    assert len(configure) >= 2     # split at paragraphs ...
    assert all(c.text.startswith("Paragraph") or c.text.startswith("## Configure") for c in configure)
    # ... and a split section's neighbours share a paragraph (the overlap)
    shared = set(configure[0].text.split("\n\n")) & set(configure[1].text.split("\n\n"))
    assert shared and all(len(s) <= 60 for s in shared)


def test_a_paragraph_longer_than_size_is_cut_into_overlapping_windows():
    chunks = [c for c in chunk_text(DOC, 300, 60) if c.heading == "Long" and "word" in c.text]
    assert len(chunks) >= 8
    line = DOC.split("\n").index(" ".join(f"word{i}" for i in range(400))) + 1
    assert all(c.start_line == c.end_line == line for c in chunks)
    for left, right in zip(chunks, chunks[1:], strict=False):
        assert left.text.split()[-1] in right.text    # the cut is repeated in the next window
        assert not left.text.endswith("wor")          # cut at a space, not inside a word


def test_blank_documents_have_no_chunks():
    assert chunk_text("", 100, 10) == []
    assert chunk_text("\n \n\n", 100, 10) == []


def test_headings_inside_code_fences_do_not_split():
    text = "# Real\n\n```sh\n# not a heading\necho hi\n```\n"
    [chunk] = chunk_text(text, 500, 50)
    assert chunk.heading == "Real" and "# not a heading" in chunk.text
    assert (chunk.start_line, chunk.end_line) == (1, 6)
