"""Compare a replayed stream with the recorded one, path by path (CONTRACT section 8, "Replay").

Not by global seq: parallel members interleave their events in whatever order they finish.
Within one path (one invocation) the order is the program's, except the results of one
turn's concurrent tool calls, which arrive as they finish: a run of consecutive
``tool.call``/``tool.result`` events at a path is compared as a set (sorted by call id).
Ignored: ``ts``, owners, expiries, durations, idempotency keys (they hold the run id: a
fork's past keeps its original's) and ``seq`` keys inside data; consecutive
``message.delta`` chunks at a path are compared joined (their cut depends on the provider's
packets). Not compared at all: tool server start-up (a replay starts no server),
``checkpoint`` (the engine's own bookkeeping of where a resume is cheap, which engine
versions place differently: a committed recording stays valid across them), and the
workspace's ``workspace.changed`` / ``workspace.waiting`` (a replay serves workspace tool
results from the stream, touching no workspace; the results themselves are compared).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

IGNORED_TYPES = frozenset({"toolserver.started", "toolserver.ready", "checkpoint", "workspace.changed",
                           "workspace.waiting"})
IGNORED_KEYS = frozenset({"ts", "owner", "previousOwner", "expiresAt", "heartbeat", "durationMs", "idempotencyKey",
                          "duration_ms", "duration", "elapsed", "latency"})
ORDER_FREE = frozenset({"tool.call", "tool.result"})
_RANK = {"tool.call": 0, "tool.result": 1}


@dataclass(frozen=True)
class Divergence:
    """The first place where the replay left the recording: at ``path``, the recording's event
    ``seq`` (or the replay's, when the recording has nothing there), and both sides."""

    path: str
    seq: int
    expected: dict[str, Any] | None     # {"type", "data"} as recorded; None: the recording ends here
    got: dict[str, Any] | None          # as replayed; None: the replay produced nothing here
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "seq": self.seq, "expected": self.expected, "got": self.got,
                "detail": self.detail}

    def __str__(self) -> str:
        return f"at {self.path or '(run)'} (seq {self.seq}): {self.detail}"


@dataclass(frozen=True)
class _Item:
    seq: int
    type: str
    data: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}


def by_path(events: list[Any], drop_hash: bool = False) -> dict[str, list[_Item]]:
    """Each path's events, normalised for comparison (see the module's docstring)."""
    out: dict[str, list[_Item]] = {}
    for event in events:
        if event.type in IGNORED_TYPES:
            continue
        items = out.setdefault(event.path, [])
        data = _plain(event.data or {})
        if event.type == "message.delta" and items and items[-1].type == "message.delta":
            last = items[-1]
            items[-1] = _Item(last.seq, last.type, {"text": last.data.get("text", "") + str(data.get("text", ""))})
            continue
        items.append(_Item(event.seq, event.type, data))
    for path, items in out.items():
        out[path] = _sorted_blocks(items)
    return out


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    # JSON's view of the data (tuples are lists in a store), without the keys that differ by nature
    plain = json.loads(json.dumps(data, ensure_ascii=False, default=str))
    return {k: _unsequenced(v) for k, v in plain.items() if k not in IGNORED_KEYS}


def _unsequenced(value: Any) -> Any:
    """``value`` without nested ``seq`` keys: what an in-run tool reports of the stream (team-control's
    read_logs) carries global seqs, which parallel agents order as they finish."""
    if isinstance(value, dict):
        return {k: _unsequenced(v) for k, v in value.items() if k != "seq"}
    if isinstance(value, list):
        return [_unsequenced(v) for v in value]
    return value


def _sorted_blocks(items: list[_Item]) -> list[_Item]:
    out: list[_Item] = []
    block: list[_Item] = []
    for item in [*items, None]:
        if item is not None and item.type in ORDER_FREE:
            block.append(item)
            continue
        if block:
            out.extend(sorted(block, key=lambda i: (_RANK[i.type], str(i.data.get("id", "")), i.seq)))
            block = []
        if item is not None:
            out.append(item)
    return out


def compare(expected: list[Any], got: list[Any],
            prefixes: list[tuple[list[Any], list[Any]]] = ()) -> Divergence | None:
    """The earliest divergence (by the recording's seq) of ``got`` from ``expected``; each of
    ``prefixes`` (an interrupted segment) only needs its recording to be a prefix of its replay."""
    found: list[Divergence] = []
    pairs = [(expected, got, False), *((rec, rep, True) for rec, rep in prefixes)]
    for rec_events, rep_events, prefix in pairs:
        recorded = by_path(rec_events)
        replayed = by_path(rep_events)
        paths = set(recorded) if prefix else set(recorded) | set(replayed)
        for path in paths:
            divergence = _first(path, recorded.get(path, []), replayed.get(path, []), prefix)
            if divergence is not None:
                found.append(divergence)
    if not found:
        return None
    return min(found, key=lambda d: (d.seq, d.path))


def _first(path: str, recorded: list[_Item], replayed: list[_Item], prefix: bool) -> Divergence | None:
    if prefix:
        # An interrupted execution stopped anywhere in a turn's concurrent calls: each of the
        # calls and results it recorded must be in the replay; the rest, in order, a prefix.
        free = [(i.type, json.dumps(i.data, sort_keys=True)) for i in replayed if i.type in ORDER_FREE]
        for want in recorded:
            if want.type in ORDER_FREE:
                key = (want.type, json.dumps(want.data, sort_keys=True))
                if key not in free:
                    return Divergence(path, want.seq, want.view(), None,
                                      f"expected this {want.type}, the replay has none like it at this path")
                free.remove(key)
        recorded = [i for i in recorded if i.type not in ORDER_FREE]
        replayed = [i for i in replayed if i.type not in ORDER_FREE]
    for index, want in enumerate(recorded):
        have = replayed[index] if index < len(replayed) else None
        if have is None:
            return Divergence(path, want.seq, want.view(), None,
                              f"expected {want.type}, the replay produced nothing more at this path")
        have_data = have.data
        if have.type == "message.completed" and "requestHash" not in want.data:
            have_data = {k: v for k, v in have_data.items() if k != "requestHash"}   # recorded before hashes
        if have.type != want.type:
            return Divergence(path, want.seq, want.view(), have.view(),
                              f"expected {want.type}, got {have.type}")
        if prefix and index == len(recorded) - 1 and want.type == "message.delta" and \
                str(have_data.get("text", "")).startswith(str(want.data.get("text", ""))):
            continue   # a reply cut off where the execution stopped: what was streamed so far
        if have_data != want.data:
            return Divergence(path, want.seq, want.view(), {"type": have.type, "data": have_data},
                              f"{want.type}: {_differences(want.data, have_data)}")
    if not prefix and len(replayed) > len(recorded):
        extra = replayed[len(recorded)]
        after = recorded[-1].seq if recorded else extra.seq
        return Divergence(path, after, None, extra.view(),
                          f"the recording ends here; the replay went on with {extra.type}")
    return None


def _differences(want: dict[str, Any], have: dict[str, Any]) -> str:
    keys = sorted(k for k in set(want) | set(have) if want.get(k, _MISSING) != have.get(k, _MISSING))
    return "; ".join(f"{k}: expected {_short(want.get(k, _MISSING))}, got {_short(have.get(k, _MISSING))}"
                     for k in keys[:4])


_MISSING = "(absent)"


def _short(value: Any, limit: int = 120) -> str:
    text = value if value is _MISSING else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
