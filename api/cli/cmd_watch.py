"""``watch PATH | --git URL [--ref REF] [--path DIR]``: the GitOps loop (engine/gitops/ via Engine)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from agentform.api.cli import app, globals_of


@app.command("watch")
def watch_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(None, help="Folder of manifests to watch (or use --git)."),
    git: str = typer.Option(None, "--git", help="Repository URL (https, ssh, git, file, or a local path)."),
    ref: str = typer.Option("HEAD", "--ref", help="Branch, tag or commit to follow (default: the remote's HEAD)."),
    subpath: str = typer.Option(None, "--path", help="Folder of manifests inside the repository."),
    interval: str = typer.Option("60s", "--interval", help="Time between two fetches (at least 5s); SIGHUP fetches at once."),
    app_name: str = typer.Option(None, "--app", help="App the applies belong to (default: the folder's or repository's name)."),
    prune: bool = typer.Option(False, "--prune", help="Delete resources of the app that left the manifests (as apply --prune)."),
    credentials_file: Path = typer.Option(None, "--git-credentials-file", help=(
        "File whose first line is TOKEN or USERNAME:TOKEN for git over HTTP (else $AGENTFORM_GIT_TOKEN).")),
    once: bool = typer.Option(False, "--once", help="Sync once and exit: 0 applied or unchanged, 1 otherwise."),
    output: str = typer.Option(None, "-o", "--output", help="json: one JSON object per sync, one per line."),
) -> int:
    """Keep the store in step with a folder or a git ref: validate and apply on every change.

    A commit that does not validate is not applied: the last good revision stays in force, the
    error is recorded (`get app`) and printed, and the next good commit applies. Stop with
    Ctrl-C or SIGTERM.
    """
    import asyncio
    import signal

    from agentform import Engine, UsageError
    from agentform.specs import parse_duration

    if output not in (None, "json"):
        raise UsageError(f"-o {output}: watch prints text or json (one object per line)")
    try:
        seconds = parse_duration(interval)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    where = dict(git=git, ref=ref, subpath=subpath, app=app_name, prune=prune, credentials_file=credentials_file)
    try:
        if once:
            result = engine.sync(path, **where)
            _show(result, output)
            return 0 if result.ok else 1

        async def loop() -> None:
            stop, refresh = asyncio.Event(), asyncio.Event()
            running = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                running.add_signal_handler(signum, stop.set)
            running.add_signal_handler(signal.SIGHUP, refresh.set)
            typer.echo(f"watching {git or path} (Ctrl-C stops{', SIGHUP fetches now' if git else ''})", err=True)
            await engine.watch(path, interval=seconds, on_sync=lambda r: _show(r, output), stop=stop,
                               refresh=refresh, **where)

        asyncio.run(loop())
        return 0
    finally:
        engine.close()


def _show(result, output: str | None) -> None:
    if output == "json":
        typer.echo(json.dumps(result.to_dict(), separators=(",", ":")))
        return
    when = time.strftime("%H:%M:%S", time.localtime(result.at))
    commit = f" commit {result.commit[:12]}" if result.commit else ""
    in_force = f"revision {result.in_force} in force" if result.in_force else "nothing applied yet"
    head = f"{when} app {result.app}{commit}"
    if result.outcome == "applied":
        typer.echo(f"{head}: applied as revision {result.revision}")
        for line in result.lines:
            typer.echo(f"  {line}")
    elif result.outcome == "unchanged":
        typer.echo(f"{head}: unchanged ({in_force})")
    elif result.outcome == "invalid":
        typer.echo(f"{head}: not applied, it does not validate; {in_force}", err=True)
    else:
        typer.echo(f"{head}: sync failed, will retry; {in_force}", err=True)
    if result.error:
        for line in result.error.splitlines():
            typer.echo(f"  {line}", err=True)


def get_apps(ctx: typer.Context, name: str | None, output: str | None) -> int:
    """``get app [NAME]``: where each app comes from, the commit and revision in force, and the
    last error of ``watch`` with its commit and age (called from ``get``)."""
    from agentform import Engine
    from agentform.api.cli.state_views import age

    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        found = [engine.app_status(name)] if name else engine.apps()
    finally:
        engine.close()
    if output:
        from agentform.api.cli.cmd_state import _dump

        data = [a.to_dict() for a in found]
        _dump(data[0] if name else data, output)
        return 0
    if not found:
        typer.echo("No apps found: nothing has been applied yet.", err=True)
        return 0
    now = time.time()
    if name:
        status = found[0]
        typer.echo(_describe(status, now, age))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    # The message itself is in `get app NAME`: one line per app here.
    for column in ("NAME", "PHASE", "REVISION", "COMMIT", "SYNCED", "LAST ERROR", "SOURCE"):
        table.add_column(column, no_wrap=True)
    for a in found:
        source = (a.source or "") + (f"@{a.ref}" if a.ref else "") + (f"//{a.path}" if a.path else "")
        error = ""
        if a.error:
            error = (f"{age(now - a.error_at)} ago" if a.error_at else "yes") + \
                (f" ({a.error_commit[:8]})" if a.error_commit else "")
        table.add_row(a.name, a.phase, str(a.synced_revision or ""), (a.synced_commit or "")[:8],
                      f"{age(now - a.synced_at)} ago" if a.synced_at else "", error,
                      source if a.watched else f"{source} (apply)")
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:     # piped: whole lines rather than 80 columns of ellipses
        console.width = 240
    console.print(table)
    return 0


def _describe(a, now: float, age) -> str:
    lines = [f"App:         {a.name}",
             f"Source:      {a.source or ''}" + (f" (ref {a.ref})" if a.ref else "") + (f" path {a.path}" if a.path else ""),
             f"Watched:     {'yes' if a.watched else 'no (applied by hand)'}",
             f"Phase:       {a.phase}",
             f"Resources:   {a.resources}"]
    if a.synced_revision is not None or a.synced_commit:
        when = f", synced {age(now - a.synced_at)} ago" if a.synced_at else ""
        lines.append(f"In force:    revision {a.synced_revision}, commit {a.synced_commit or '(none)'}{when}")
    else:
        lines.append("In force:    nothing applied yet")
    if a.error:
        when = f", {age(now - a.error_at)} ago" if a.error_at else ""
        lines.append(f"Last error:  commit {a.error_commit or '(none)'}{when}")
        lines += [f"  {line}" for line in a.error.splitlines()]
    return "\n".join(lines)
