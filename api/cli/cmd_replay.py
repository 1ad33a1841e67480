"""``replay`` and ``fork``: run a recorded run again from its stream, or continue it from the middle.

Both are thin faces over ``agentform.Engine`` (``replay``, ``fork``); ``logs --export`` (in
cmd_run.py) writes the files ``replay FILE`` reads.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from agentform import printable
from agentform.api.cli import app, globals_of


def _show(value: Any) -> str:
    if value is None:
        return "(nothing)"
    return printable(json.dumps(value, ensure_ascii=False, default=str), one_line=True)


@app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., metavar="RUN|FILE", help=(
        "A run id (or unique prefix), or a recording written by `logs RUN --export FILE`.")),
    revision: str = typer.Option("pinned", "--revision", help=(
        "pinned: the run's own revision (the recording's graph); current: the manifests applied now.")),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml: print the report as data."),
) -> None:
    """Execute a run again with every model and tool response served from its stream (no network,
    no tool called, nothing written) and compare path by path: exit 0 same, 1 diverged."""
    import asyncio

    from agentform import Engine
    from agentform.api.cli.cmd_run import _check_output, dump

    _check_output(output)
    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        report = asyncio.run(engine.replay(run, revision=revision))
    finally:
        engine.close()
    if output is not None:
        dump(report.to_dict(), output)
    elif report.same:
        typer.echo(f"replay of run {report.run} ({report.target}, revision {report.revision}): same "
                   f"({report.events} events on {report.paths} paths)")
    else:
        d = report.divergence
        typer.echo(f"replay of run {report.run} ({report.target}, revision {report.revision}): diverged "
                   f"at {printable(d.path or '(run)', one_line=True)}, seq {d.seq}")
        typer.echo(f"  {printable(d.detail, one_line=True)}")
        typer.echo(f"  expected: {_show(d.expected)}")
        typer.echo(f"  got:      {_show(d.got)}")
    raise typer.Exit(report.exit_code)


@app.command("fork")
def fork_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="The run to fork: id or unique prefix."),
    at: int = typer.Option(..., "--at", help="Keep the run's events 1..SEQ as the fork's past."),
    revision: str = typer.Option("current", "--revision", help=(
        "current: continue on the manifests applied now; original: on the run's own revision.")),
    ci: bool = typer.Option(False, "--ci", help="Plain lines instead of the live view."),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml: print the result as data."),
) -> None:
    """A new run that takes RUN's stream up to SEQ as its past (nothing in it is called again) and
    continues live from there; exits like `run`."""
    from agentform import Engine
    from agentform.api.cli.cmd_run import _check_output, _use_plain, foreground, print_result

    _check_output(output)
    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        result, interrupted = foreground(
            lambda on_event: engine.fork(run, at, revision=revision, on_event=on_event), f"fork of {run}",
            plain=_use_plain(ci) or output is not None)
        print_result(result, output)
    finally:
        engine.close()
    raise typer.Exit(130 if interrupted else result.exit_code)
