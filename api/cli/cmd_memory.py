"""``agentform memory team/NAME``: the notes the ``memory`` built-in keeps for a team (Engine.memory)."""

from __future__ import annotations

import json
import sys
import time

import typer

from agentform.api.cli import app, globals_of

_SHOWN = 60   # characters of a value in the table (-o json has them whole)


@app.command("memory")
def memory_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="team/NAME, or agent/NAME for an agent in no team "
                                 "(team/NAMESPACE/NAME also works)."),
    namespace: str = typer.Option("default", "-n", "--namespace", help="The team's namespace."),
    output: str = typer.Option(None, "-o", "--output", help="json: the entries as data, values whole."),
) -> None:
    """List what a team remembers across runs (the memory built-in): key, value, when and which run wrote it."""
    from agentform import Engine, UsageError, printable

    if output not in (None, "json"):
        raise UsageError(f"-o {output}: choose json")
    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        scope = engine.memory(target, namespace)
    finally:
        engine.close()
    if output == "json":
        sys.stdout.write(json.dumps(scope.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return
    if not scope.entries:
        typer.echo(f"no memory for {scope.scope} in namespace {scope.namespace}")
        return
    width = max(len("KEY"), *(len(printable(e.key, one_line=True)) for e in scope.entries))
    lines = [f"{'KEY':<{width}}  {'UPDATED':<19}  {'RUN':<26}  VALUE"]
    for e in scope.entries:
        value = printable(e.value, one_line=True)
        value = value if len(value) <= _SHOWN else value[:_SHOWN - 1] + "…"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.updated_at))
        lines.append(f"{printable(e.key, one_line=True):<{width}}  {when}  {e.run_id or '-':<26}  {value}")
    typer.echo("\n".join(lines))
