"""Hostile-safe YAML: parse events into plain Python data with the location of every node.

We build the data straight from parser events (libyaml's C parser through ruamel.yaml's
clib when installed, ruamel's pure-Python parser otherwise) instead of composing a node
graph first, so every safety budget is enforced while the document is read: alias
expansions count against a node budget (a billion-laughs file stops after ``max_nodes``),
nesting is capped, only the YAML core schema tags are accepted, duplicate keys are
refused. Nothing recursive walks unbounded input. The result is plain data
(dict/list/str/int/float/bool/None) plus a side table of locations.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from agentform.engine.errors import Diagnostic

try:  # the C parser is ~25x faster; locations survive in its event marks
    from _ruamel_yaml_clibz import CParser as _CParser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the install
    try:
        from _ruamel_yaml import CParser as _CParser  # type: ignore[import-not-found]
    except ImportError:
        _CParser = None

MAX_DEPTH = 100
MAX_NODES = 200_000
CORE = "tag:yaml.org,2002:"
_CORE_TAGS = {CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")} | {"!"}

Path = tuple  # a data path: keys and list indices, e.g. ("spec", "stages", 0, "name")


@dataclass
class Document:
    """One YAML document: plain data, where each node was, and what was wrong with it."""

    index: int
    data: Any
    line: int  # 1-based line of the document's first node
    col: int
    # path -> (key line, key col, value line, value col), 1-based; the root has no key.
    locs: dict[Path, tuple[int, int, int, int]] = field(default_factory=dict)
    # path -> (line, col, is_block) where the text of a block scalar, or of a flow scalar
    # holding '{', starts: template errors are placed relative to it.
    text_starts: dict[Path, tuple[int, int, bool]] = field(default_factory=dict)
    errors: list[Diagnostic] = field(default_factory=list)


@dataclass
class ParsedFile:
    documents: list[Document]
    fatal: list[Diagnostic]  # the file could not be read to its end (syntax, budget, depth)


class _Stop(Exception):
    """Reading stops: the file is hostile or malformed beyond recovery."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


def _plain(value: str) -> Any:
    """Resolve an untagged plain scalar by the YAML 1.2 core schema."""
    if not value or value[0] in "~nNtTfF":
        if _NULL.match(value):
            return None
        if value in _BOOL:
            return _BOOL[value]
        return value
    first = value[0]
    if first.isdigit() or first in "+-.":
        if _INT.match(value):
            return int(value)
        if _INT8.match(value):
            return int(value[2:], 8)
        if _INT16.match(value):
            return int(value[2:], 16)
        if _FLOAT.match(value):
            return float(value)
        if _INF.match(value):
            return float("-inf") if value[0] == "-" else float("inf")
        if _NAN.match(value):
            return float("nan")
    return value


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(CORE):] if tag.startswith(CORE) else tag


def _tagged(tag: str, value: str) -> Any:
    """A scalar with an explicit core tag; ValueError when the text does not fit the tag."""
    if tag in (CORE + "str", "!"):
        return value
    resolved = _plain(value)
    expected = {CORE + "int": int, CORE + "float": (float, int), CORE + "bool": bool}.get(tag)
    if tag == CORE + "null":
        if resolved is not None:
            raise ValueError(f"'{value}' is not a null")
        return None
    if expected is None or isinstance(resolved, bool) != (expected is bool) or not isinstance(resolved, expected):
        raise ValueError(f"'{value}' is not a valid {_short_tag(tag)}")
    return float(resolved) if tag == CORE + "float" else resolved


def _events(text: str):
    if _CParser is not None:
        parser = _CParser(text)
        get_event, check_event = parser.get_event, parser.check_event
        try:
            while check_event():
                yield get_event()
        finally:
            parser.dispose()
    else:  # pragma: no cover - pure-Python fallback
        import io

        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).parse(io.StringIO(text))


class _Frame:
    __slots__ = ("container", "path", "is_map", "key", "key_loc", "anchor", "start", "merges")

    def __init__(self, container, path, is_map, anchor, start):
        self.container = container
        self.path = path
        self.is_map = is_map
        self.key = _NOKEY
        self.key_loc = (0, 0)
        self.anchor = anchor
        self.start = start  # node count when the frame opened (anchor sizes)
        self.merges: list | None = None


_NOKEY = object()


class _Builder:
    """Turns a stream of parser events into Documents, enforcing every budget on the way."""

    def __init__(self, text: str, file: str, max_nodes: int, max_depth: int):
        self.text = text
        self.file = file
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.nodes = 0
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (data, subtree size)
        self.documents: list[Document] = []
        self._lines: list[str] | None = None

    def diag(self, line: int, col: int, message: str) -> Diagnostic:
        return Diagnostic(self.file, line, col, message)

    def run(self) -> None:
        stack: list[_Frame] = []
        doc: Document | None = None
        names: dict[type, str] = {}
        for event in _events(self.text):
            name = names.get(type(event))
            if name is None:
                name = names[type(event)] = type(event).__name__
            mark = event.start_mark
            line, col = mark.line + 1, mark.column + 1
            if name == "ScalarEvent":
                self._scalar(stack, doc, event, line, col)
            elif name == "MappingStartEvent" or name == "SequenceStartEvent":
                if len(stack) >= self.max_depth:
                    raise _Stop(self.diag(line, col, f"nesting deeper than {self.max_depth} levels"))
                tag = event.tag
                is_map = name == "MappingStartEvent"
                if tag is not None and str(tag) not in ("!", CORE + ("map" if is_map else "seq")):
                    doc.errors.append(self.diag(line, col, self._tag_message(str(tag))))
                self._count(1, line, col)
                container: Any = {} if is_map else []
                path = self._attach(stack, doc, container, line, col)
                stack.append(_Frame(container, path, is_map, event.anchor, self.nodes - 1))
            elif name == "MappingEndEvent" or name == "SequenceEndEvent":
                frame = stack.pop()
                if frame.merges:
                    self._merge(frame, doc)
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.container, self.nodes - frame.start)
            elif name == "AliasEvent":
                self._alias(stack, doc, event, line, col)
            elif name == "DocumentStartEvent":
                doc = Document(index=len(self.documents), data=None, line=line, col=col)
                self.anchors = {}
            elif name == "DocumentEndEvent":
                self.documents.append(doc)
                doc = None

    def _line(self, index: int) -> str:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines[index] if index < len(self._lines) else ""

    def _tag_message(self, tag: str) -> str:
        return (
            f"tag '{_short_tag(tag)}' is not allowed: only the YAML core schema "
            "(!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) is accepted"
        )

    def _count(self, n: int, line: int, col: int) -> None:
        self.nodes += n
        if self.nodes > self.max_nodes:
            raise _Stop(
                self.diag(line, col, f"document too large: more than {self.max_nodes} nodes "
                          "(counting alias expansions)")
            )

    def _scalar(self, stack, doc, event, line, col) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            self._count(0, line, col)
        tag = event.tag
        value: Any = event.value
        if tag is None:
            if event.implicit[0] and not event.style:  # plain, untagged: resolve
                value = _plain(value)
        elif (tag := str(tag)) not in _CORE_TAGS:
            doc.errors.append(self.diag(line, col, self._tag_message(tag)))
        else:
            try:
                value = _tagged(tag, value)
            except ValueError as exc:
                doc.errors.append(self.diag(line, col, str(exc)))
        if stack and stack[-1].is_map and stack[-1].key is _NOKEY:
            self._key(stack[-1], doc, value, event, line, col)
            return
        path = self._attach(stack, doc, value, line, col)
        if event.style in ("|", ">"):
            # The text of a block scalar starts on the next line, at its indentation.
            text_line = self._line(line)  # the next line (0-based index ``line``)
            indent = len(text_line) - len(text_line.lstrip(" "))
            doc.text_starts[path] = (line + 1, indent + 1, True)
        elif isinstance(value, str) and "{" in value:
            # A flow scalar that may hold a template: its text starts after any quote.
            doc.text_starts[path] = (line, col + (1 if event.style in ("'", '"') else 0), False)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)

    def _key(self, frame: _Frame, doc, key, event, line, col) -> None:
        if key == "<<" and not event.style and frame.merges is None:
            frame.merges = []
        if isinstance(key, float) and key != key:
            key = "nan"
        frame.key = key
        frame.key_loc = (line, col)

    def _attach(self, stack, doc, value, line, col) -> Path:
        """Put ``value`` where the parser is (document root, list item, or mapping value)."""
        if not stack:
            doc.data = value
            doc.locs[()] = (line, col, line, col)
            return ()
        frame = stack[-1]
        if not frame.is_map:
            path = frame.path + (len(frame.container),)
            frame.container.append(value)
            doc.locs[path] = (line, col, line, col)
            return path
        key = frame.key
        frame.key = _NOKEY
        kline, kcol = frame.key_loc
        if key is _NOKEY:  # a mapping or sequence used as a key
            raise _Stop(self.diag(line, col, "a mapping key must be a scalar"))
        if frame.merges is not None and key == "<<":
            frame.merges.append((value, line, col))
            return frame.path + ("<<",)
        if isinstance(key, (dict, list)):
            raise _Stop(self.diag(kline, kcol, "a mapping key must be a scalar"))
        path = frame.path + (key,)
        if key in frame.container:
            first = doc.locs.get(path, (0, 0, 0, 0))
            doc.errors.append(self.diag(kline, kcol, f"duplicate key '{key}' (first at line {first[0]})"))
            return frame.path + (_NOKEY,)
        frame.container[key] = value
        doc.locs[path] = (kline, kcol, line, col)
        return path

    def _alias(self, stack, doc, event, line, col) -> None:
        anchor = event.anchor
        if anchor not in self.anchors:
            raise _Stop(self.diag(line, col, f"unknown alias '*{anchor}'"))
        value, size = self.anchors[anchor]
        self._count(size, line, col)
        if stack and stack[-1].is_map and stack[-1].key is _NOKEY:
            if isinstance(value, (dict, list)):
                raise _Stop(self.diag(line, col, "a mapping key must be a scalar"))
            self._key(stack[-1], doc, value, event, line, col)
            return
        # A copy, so that nothing downstream sees shared structure; bounded by the budget.
        self._attach(stack, doc, copy.deepcopy(value) if isinstance(value, (dict, list)) else value, line, col)

    def _merge(self, frame: _Frame, doc) -> None:
        """YAML merge keys (``<<: *base``): keys written in the mapping win."""
        for value, line, col in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    doc.errors.append(self.diag(line, col, "a merge key '<<' takes a mapping or a list of mappings"))
                    continue
                for key, item in source.items():
                    if key not in frame.container:
                        frame.container[key] = item
                        doc.locs.setdefault(frame.path + (key,), (line, col, line, col))


def parse_yaml(
    text: str, file: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> ParsedFile:
    """Every document of ``text`` as plain data with locations; never raises on bad input."""
    builder = _Builder(text, file, max_nodes, max_depth)
    try:
        builder.run()
    except _Stop as stop:
        return ParsedFile(builder.documents, [stop.diagnostic])
    except RecursionError:
        return ParsedFile(builder.documents, [Diagnostic(file, 1, 1, "nesting too deep")])
    except Exception as exc:  # noqa: BLE001 - parser errors of both parser implementations
        return ParsedFile(builder.documents, [_parser_diagnostic(exc, file, text)])
    return ParsedFile(builder.documents, [])


def _parser_diagnostic(exc: Exception, file: str, text: str) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if mark is None and getattr(exc, "position", None) is not None:  # ReaderError
        position = exc.position  # type: ignore[attr-defined]
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(exc, "reason", "unacceptable character")
        return Diagnostic(file, line, col, f"invalid YAML: {reason}")
    if mark is None:
        return Diagnostic(file, 1, 1, f"invalid YAML: {exc}")
    message = problem or str(exc)
    if context:
        message = f"{message} ({context})"
    return Diagnostic(file, mark.line + 1, mark.column + 1, f"invalid YAML: {message}")


def decode(raw: bytes, file: str) -> tuple[str | None, Diagnostic | None]:
    """UTF-8 text of a file, or a located error for binary and non-UTF-8 content."""
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        return None, _byte_diag(raw, offset, file, "binary file (contains a NUL byte)")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, _byte_diag(raw, exc.start, file, f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})")


def _byte_diag(raw: bytes, offset: int, file: str, message: str) -> Diagnostic:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return Diagnostic(file, line, col, message)
