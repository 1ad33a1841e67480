"""``get runs``, ``get run ID``, ``get threads`` and ``describe run/ID``, as kubectl users expect.

A run's namespace is its target's: ``get runs`` lists the runs of namespace ``default``
(``-n NS`` another, ``-A`` every one, with a NAMESPACE column), newest first; ``get run
ID`` takes an id or a unique prefix; ``describe run/ID`` shows the run in full with its
latest events at the bottom, as ``kubectl describe`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import typer

LISTED = 50     # as many as `runs` lists by default
EVENTS = 20     # the events `describe run` ends with


def _when(ts: float | None) -> str:
    if ts is None:
        return "<none>"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _dump(data: Any, output: str) -> None:
    from agentform.api.cli.cmd_run import dump

    dump(data, output)


def get_runs(options: Any, run_id: str | None, namespace: str | None, output: str | None) -> int:
    from agentform.api.cli.cmd_run import print_table
    from agentform.api.cli.state_views import age

    engine = options.engine()
    try:
        runs = [engine.run_info(run_id)] if run_id else engine.runs(namespace=namespace, limit=LISTED).items
    finally:
        engine.close()
    if output:
        data = [r.to_dict() for r in runs]
        _dump(data[0] if run_id else data, output)
        return 0
    if not runs:
        where = "any namespace" if namespace is None else f'namespace "{namespace}"'
        typer.echo(f"No runs found in {where}.", err=True)
        return 0
    now = time.time()
    wide = namespace is None
    header = ("NAME", *(("NAMESPACE",) if wide else ()), "TARGET", "STATUS", "REV", "TOKENS", "COST", "DURATION", "AGE")
    print_table(header, [(r.id, *((r.namespace,) if wide else ()), _short_target(r.target), r.status,
                          str(r.revision), str(r.tokens), f"${r.cost_usd:.4f}", f"{r.duration_s:.1f}s",
                          age(now - r.created_at)) for r in runs])
    return 0


def _short_target(target: str) -> str:
    """``team/research`` for ``team/<ns>/research``: the namespace has its own column or filter."""
    parts = target.split("/")
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 else target


def get_threads(options: Any, thread: str | None, namespace: str | None, output: str | None) -> int:
    from agentform.api.cli.cmd_run import print_table
    from agentform.api.cli.state_views import age

    engine = options.engine()
    try:
        threads = engine.threads(namespace=namespace, limit=LISTED)
    finally:
        engine.close()
    if thread is not None:
        threads = [t for t in threads if t.thread == thread]
        if not threads:
            from agentform import NotFound

            raise NotFound(f'thread "{thread}" not found (among the {LISTED} latest); '
                           f"`agentform runs --thread {thread}` lists its runs")
    if output:
        data = [t.to_dict() for t in threads]
        _dump(data[0] if thread else data, output)
        return 0
    if not threads:
        where = "any namespace" if namespace is None else f'namespace "{namespace}"'
        typer.echo(f"No threads found in {where}.", err=True)
        return 0
    now = time.time()
    print_table(("NAME", "RUNS", "LAST RUN", "TARGET", "STATUS", "AGE"),
                [(t.thread, str(t.runs), t.last_run.id if t.last_run else "",
                  t.last_run.target if t.last_run else "", t.last_run.status if t.last_run else "",
                  age(now - t.last_at)) for t in threads])
    return 0


def describe_run(options: Any, run_id: str, output: str | None) -> int:
    from agentform import UsageError

    if not run_id or "/" in run_id:
        raise UsageError(f"expected run/ID such as run/01hx... (got 'run/{run_id}')")
    engine = options.engine()
    try:
        detail = engine.run_detail(run_id, events=EVENTS)
    finally:
        engine.close()
    if output:
        _dump(detail.to_dict(), output)
        return 0
    typer.echo(describe_text(detail))
    return 0


def describe_text(detail: Any) -> str:
    from agentform import printable
    from agentform.api.cli.cmd_run import describe

    run = detail.run
    lines = [f"{'Name:':<20}{run.id}", f"{'Namespace:':<20}{run.namespace}", f"{'Target:':<20}{run.target}",
             f"{'Status:':<20}{run.status}", f"{'Revision:':<20}{run.revision}",
             f"{'Thread:':<20}{run.thread or '<none>'}", f"{'Owner:':<20}{run.owner or '<none>'}",
             f"{'Created:':<20}{_when(run.created_at)}", f"{'Started:':<20}{_when(run.started_at)}",
             f"{'Finished:':<20}{_when(run.finished_at)}", f"{'Duration:':<20}{run.duration_s:.1f}s",
             f"{'Tokens:':<20}{run.tokens} ({run.tokens_in} in, {run.tokens_out} out)",
             f"{'Cost:':<20}${run.cost_usd:.4f}"]
    if run.error:
        lines.append(f"{'Error:':<20}{printable(run.error, one_line=True)}")
    for title, value in (("Input:", detail.input), ("Params:", detail.params or None), ("Output:", detail.output)):
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
        lines += [title] + ["  " + printable(line) for line in text.splitlines()]
    shown = len(detail.events)
    lines.append(f"Events ({shown} of {detail.last_seq}, the latest; `agentform logs {run.id}` has them all):"
                 if shown < detail.last_seq else "Events:")
    for event in detail.events:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        lines.append(f"  {event.seq:>5} {stamp} {describe(event)}")
    return "\n".join(lines)
