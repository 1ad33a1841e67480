"""``run``, ``runs``, ``logs``, ``chat``, ``resume`` and ``cancel``: starting runs and reading their streams.

``run`` shows a live view in a terminal (api/live.py) and plain lines otherwise (``--ci``,
CI=true, or stdout not a terminal). Ctrl-C cancels the run cleanly and exits 130.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from agentform import printable
from agentform.api.cli import app, globals_of

# Events worth a line in --ci output and in `logs` text output.
SIGNIFICANT = frozenset({
    "run.started", "run.queued", "run.waiting", "run.completed", "run.failed", "run.cancelled",
    "stage.started", "stage.completed", "stage.failed", "stage.skipped", "agent.started",
    "agent.completed", "agent.failed", "tool.call", "tool.result", "handoff", "approval.requested",
    "approval.resolved", "budget.exceeded", "workspace.changed", "toolserver.started", "toolserver.ready",
    "workspace.waiting",
})


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(event: Any) -> str:
    """One human line for an event."""
    d = event.data
    t = event.type
    if t == "run.started":
        detail = f"run {event.run_id}: {d.get('target')} (revision {d.get('revision')})"
    elif t in ("agent.started",):
        detail = f"{d.get('agent')}: {_short(d.get('task', ''), 80)}"
    elif t == "agent.completed":
        detail = f"{d.get('agent')}: {_short(d.get('output', ''), 80)}"
    elif t == "tool.call":
        detail = f"{d.get('name')}({_short(d.get('arguments', {}), 70)})"
    elif t == "tool.result":
        detail = f"{d.get('name')} error: {_short(d['error'])}" if "error" in d else \
            f"{d.get('name')} -> {_short(d.get('output', ''), 70)}"
    elif t == "handoff":
        detail = f"{d.get('from')} -> {d.get('to')}: {_short(d.get('reason') or d.get('summary') or '', 70)}"
    elif t == "budget.exceeded":
        detail = f"{d.get('budget')} of {d.get('holder')}: used {d.get('used')} of {d.get('limit')}"
    elif t == "toolserver.started":
        detail = f"{d.get('server')} starting"
    elif t == "toolserver.ready":
        tools = d.get("tools") or []
        detail = f"{d.get('server')} ready, {len(tools)} tools: {_short(', '.join(tools), 70)}"
    elif t == "message.completed":
        detail = f"{d.get('agent')}: {_short(d.get('content') or [c['name'] for c in d.get('tool_calls', [])], 80)}"
    elif t == "message.delta":
        detail = _short(d.get("text", ""), 80)
    elif t == "workspace.changed":
        detail = f"{d.get('workspace')} by {d.get('tool')}: " + _short(", ".join(
            f"{c.get('change', '?')[0].upper()} {c.get('path')}" for c in d.get("changes") or ()), 80)
    elif t == "workspace.waiting":
        detail = f"{d.get('workspace')} is in use by {d.get('holder')}; waiting for it"
    elif t == "usage":
        detail = f"{d.get('agent')}: {d.get('tokens_in')} in, {d.get('tokens_out')} out, ${d.get('cost_usd', 0):.6f}"
    else:
        detail = _short(d.get("error") or d.get("reason") or d.get("message") or d.get("output") or "", 100)
    # Errors, tool output and model text echo what others wrote: no raw bidi or ESC sequences.
    return printable(f"{event.type:<18} {event.path or '-'}  {detail}".rstrip(), one_line=True)


def event_printer(stream=None):
    """An ``on_event`` callback printing one plain line per significant event (used by approve too)."""
    out = stream or sys.stderr

    def on_event(event: Any) -> None:
        if event.type in SIGNIFICANT:
            print(describe(event), file=out, flush=True)

    return on_event


def _read_input(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        from agentform import UsageError

        try:
            return Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"-i {value}: cannot read {value[1:]}: {exc.strerror}") from None
    return value


def _params(items: list[str] | None) -> dict[str, str]:
    from agentform import UsageError

    params: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"-p takes key=value (got '{item}')")
        key, value = item.split("=", 1)
        params[key.strip()] = value   # a repeated key: the last value wins (terraform -var, helm --set)
    return params


def _target(target: str, namespace: str | None) -> str:
    parts = target.split("/")
    if namespace and len(parts) == 2:
        return f"{parts[0]}/{namespace}/{parts[1]}"
    return target


def _use_plain(ci: bool) -> bool:
    return ci or os.environ.get("CI", "").lower() == "true" or not sys.stdout.isatty()


def execute(engine: Any, target: str, *, input: Any = None, params: dict | None = None,
            thread: str | None = None, plain: bool = True, quiet: bool = False,
            wait_workspace: bool = True) -> tuple[Any, bool]:
    """Run in the foreground with Ctrl-C -> clean cancel; returns (RunResult, interrupted)."""
    return foreground(lambda on_event: engine.run(target, input=input, params=params, thread=thread,
                                                  on_event=on_event, wait_workspace=wait_workspace),
                      target, plain=plain, quiet=quiet)


def foreground(start, title: str, *, plain: bool = True, quiet: bool = False) -> tuple[Any, bool]:
    """Drive ``start(on_event)`` (an Engine coroutine: run, resume, approve) in the foreground,
    with the live view or plain lines, Ctrl-C -> clean cancel; returns (RunResult, interrupted)."""
    import asyncio
    import signal

    view = None
    if quiet:
        on_event = None
    elif plain:
        on_event = event_printer()
    else:
        from agentform.api.cli.live import LiveView

        view = LiveView(title)
        on_event = view.on_event
    interrupted = False

    async def main() -> Any:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(start(on_event))

        def on_sigint() -> None:
            nonlocal interrupted
            if not interrupted:  # once: a second Ctrl-C must not cut the clean cancellation short
                interrupted = True
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
        try:
            return await task
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass

    if view is not None:
        view.start()
    try:
        result = asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise typer.Exit(130) from None
    finally:
        if view is not None:
            view.stop()
    return result, interrupted


def dump(data: Any, output: str) -> None:
    """Data as ``-o json`` or ``-o yaml``."""
    if output == "yaml":
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.dump(json.loads(json.dumps(data, default=str)), sys.stdout)
    else:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _check_output(output: str | None, allowed: tuple[str, ...] = ("json", "yaml")) -> None:
    if output is not None and output not in allowed:
        from agentform import UsageError

        raise UsageError(f"-o takes {' or '.join(allowed)} (got '{output}')")


def print_result(result: Any, output: str | None) -> None:
    if output in ("json", "yaml"):
        dump(result.to_dict(), output)
        return
    if result.status == "succeeded":
        value = result.output
        typer.echo(value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False))
    elif result.status == "waiting":
        typer.echo(f"run {result.id} is waiting: agentform approve {result.id} [--reject]", err=True)
    else:
        typer.echo(f"error: run {result.id} {result.status}: {printable(str(result.error))}", err=True)
    typer.echo(f"run {result.id} {result.status} · {result.tokens_in + result.tokens_out} tokens · "
               f"${result.cost_usd:.4f}", err=True)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="KIND/NAME", help="agent/NAME, team/NAME or pipeline/NAME"),
    namespace: str = typer.Option(None, "-n", "--namespace", help="Namespace of the target (default: default)."),
    input: str = typer.Option(None, "-i", "--input", help="The task: TEXT, @FILE, or - for stdin."),
    param: list[str] = typer.Option(None, "-p", "--param", help=(
        "Pipeline parameter key=value (repeatable; a key given twice: the last value wins, "
        "as with terraform -var and helm --set).")),
    thread: str = typer.Option(None, "--thread", help="Continue this conversation thread."),
    detach: bool = typer.Option(False, "--detach", help=(
        "Queue the run and exit 0 printing its id: a worker executes it (PostgreSQL), or a "
        "background process of its own (SQLite).")),
    queue: str = typer.Option(None, "--queue", help="With --detach: the worker queue to put the run on (PostgreSQL)."),
    ci: bool = typer.Option(False, "--ci", help="Plain lines instead of the live view."),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml: print the result as data."),
    no_wait: bool = typer.Option(False, "--no-wait", help=(
        "Fail at once (exit 1, no run) when another run holds the target's workspace, instead of "
        "waiting for it.")),
) -> None:
    """Start a run and follow it to the end (exit 0 succeeded, 1 failed, 3 waiting, 4 cancelled, 130 Ctrl-C)."""
    _check_output(output)
    if queue is not None and not detach:
        from agentform import UsageError

        raise UsageError("--queue goes with --detach (a run in the foreground executes here)")
    if detach:
        from agentform.api.cli.cmd_worker import detach_run

        detach_run(ctx, _target(target, namespace), _read_input(input), _params(param), thread, output, queue)
        return
    engine = globals_of(ctx).engine()
    try:
        result, interrupted = execute(engine, _target(target, namespace), input=_read_input(input),
                                      params=_params(param), thread=thread,
                                      plain=_use_plain(ci) or output is not None, wait_workspace=not no_wait)
        print_result(result, output)
    finally:
        engine.close()
    raise typer.Exit(130 if interrupted else result.exit_code)


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", help="How many of the newest runs."),
    thread: str = typer.Option(None, "--thread", help="Only the runs of this thread."),
    status: str = typer.Option(None, "--status", help="Only runs with this status."),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml"),
) -> None:
    """List runs: id, target, status, revision, tokens, cost, duration."""
    _check_output(output)
    engine = globals_of(ctx).engine()
    try:   # a passed approval deadline fails its run before it is listed
        runs = engine.runs(limit=limit, thread=thread, status=status).items
    finally:
        engine.close()
    if output is not None:
        dump([r.to_dict() for r in runs], output)
        return
    print_table(("ID", "TARGET", "STATUS", "REV", "TOKENS", "COST", "DURATION"),
                [(r.id, r.target, r.status, str(r.revision), str(r.tokens), f"${r.cost_usd:.4f}",
                  f"{r.duration_s:.1f}s") for r in runs])


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Plain columns padded to their widest cell (no rich: runs lists must stay cheap)."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command("logs")
def logs_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id or a unique prefix."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep following until the run finishes."),
    after: int = typer.Option(0, "--after", help="Start after this seq (as SSE Last-Event-ID)."),
    since: str = typer.Option(None, "--since", help="Only events of the last DURATION (e.g. 10m)."),
    output: str = typer.Option(None, "-o", "--output", help="jsonl: one event per line, as data."),
    export: Path = typer.Option(None, "--export", metavar="FILE", help=(
        "Write the whole stream with its pinned revision to FILE (jsonl), for `agentform replay FILE`.")),
) -> None:
    """Replay a run's event stream from any point, and follow it live with -f."""
    import asyncio

    from agentform import Engine, UsageError
    from agentform.specs import parse_duration

    _check_output(output, ("jsonl",))
    if export is not None:
        options = globals_of(ctx)
        with Engine(home=options.home, store=options.store_url) as engine:
            run_id, count = engine.export_run(run, export)
        typer.echo(f"run {run_id}: {count} events and its pinned revision written to {export}", err=True)
        return
    cutoff = None
    if since:
        try:
            cutoff = time.time() - parse_duration(since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)

    async def main() -> None:
        async for event in engine.events(run, after=after, follow=follow, poll=0.5):
            if cutoff is not None and event.ts < cutoff:
                continue
            if output == "jsonl":
                line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
                line = f"{event.seq:>5} {stamp} {describe(event)}"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        engine.close()


@app.command("chat")
def chat_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="team/NAME", help="The team (or agent) to talk to."),
    namespace: str = typer.Option(None, "-n", "--namespace"),
    thread: str = typer.Option(None, "--thread", help="Continue this thread (default: a new one)."),
    ci: bool = typer.Option(False, "--ci", help="Plain lines for each run's events."),
) -> None:
    """A conversation: each line you type is a run in one thread; the team sees the thread so far."""
    from agentform import Engine

    options = globals_of(ctx)
    thread = thread or Engine.new_id()
    interactive = sys.stdin.isatty()
    typer.echo(f"thread {thread} (continue it later with --thread {thread}; end with Ctrl-D)", err=True)
    engine = options.engine()
    code = 0
    try:
        while True:
            if interactive:
                typer.echo("> ", nl=False, err=True)
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            result, interrupted = execute(engine, _target(target, namespace), input=text, thread=thread,
                                          plain=True, quiet=not ci)
            if interrupted:
                code = 130
                break
            if result.status == "succeeded":
                value = result.output
                typer.echo(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            else:
                typer.echo(f"error: run {result.id} {result.status}: {printable(str(result.error))}", err=True)
                code = result.exit_code
    finally:
        engine.close()
    raise typer.Exit(code)


@app.command("cancel")
def cancel_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id or a unique prefix."),
) -> None:
    """Stop a run: its owner stops within a second and records run.cancelled (here when none runs it)."""
    from agentform import Engine

    options = globals_of(ctx)
    with Engine(home=options.home, store=options.store_url) as engine:
        record, asked = engine.cancel(run)
    note = f"its owner {record.owner} stops it" if asked else "recorded"
    typer.echo(f"run {record.id} cancelled ({note})")


@app.command("resume")
def resume_cmd(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id or a unique prefix."),
    ci: bool = typer.Option(False, "--ci", help="Plain lines instead of the live view."),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml: print the result as data."),
) -> None:
    """Continue a run that is waiting, queued, or whose process died, from its stream: what
    finished is not run again; exits like `run`. Refused while another process runs it."""
    from agentform import Engine

    _check_output(output)
    options = globals_of(ctx)
    with Engine(home=options.home, store=options.store_url) as engine:
        result, interrupted = foreground(lambda on_event: engine.resume(run, on_event=on_event), run,
                                         plain=_use_plain(ci) or output is not None)
        print_result(result, output)
    raise typer.Exit(130 if interrupted else result.exit_code)
