"""State commands: ``plan``, ``apply``, ``get``, ``describe``, ``graph`` (CONTRACT section 2).

Bodies import the engine lazily so that ``--help`` stays light; none of them imports
litellm, mcp, qdrant_client, docker or fastapi.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from agentform.api.cli import app, globals_of

FORMATS = ("text", "markdown", "github")


def _check_choice(value: str | None, choices: tuple[str, ...], flag: str) -> None:
    from agentform import UsageError

    if value is not None and value not in choices:
        raise UsageError(f"{flag} must be one of: {', '.join(choices)} (got '{value}')")


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("."), help="Manifest folder or file."),
    prune: bool = typer.Option(False, "--prune", help="Plan deleting resources no longer in the manifests."),
    out: Path = typer.Option(None, "--out", help="Save the plan, signed for this store; `apply FILE` applies "
                             "exactly it. Prints its digest (and creates the store's plan key if missing)."),
    fmt: str = typer.Option("text", "--format", help="text | markdown | github"),
    output: str = typer.Option(None, "-o", "--output", help="json: the plan as data."),
    app_name: str = typer.Option(None, "--app", help="App the manifests belong to (default: the folder's name, or an overlay's metadata.name)."),
) -> int:
    """Diff the manifests against the applied state. Exit 0 no changes, 2 changes, 1 error."""
    from agentform.api.cli import state_views as views

    _check_choice(fmt, FORMATS, "--format")
    _check_choice(output, ("json",), "-o")
    engine = globals_of(ctx).engine()
    try:
        plan, digest = engine.plan(path, app=app_name, prune=prune, out=out)
    finally:
        engine.close()
    if output == "json":
        typer.echo(json.dumps({**plan.to_dict(), "digest": digest}, indent=2, ensure_ascii=False))
    else:
        render = {"text": views.plan_text, "markdown": views.plan_markdown, "github": views.plan_github}[fmt]
        _echo_plan(render(plan), color=fmt == "text" and sys.stdout.isatty())
        if out is not None and fmt == "text":
            typer.echo(f"Saved the plan to {out}; `agentform apply {out} --expect-digest {digest}` "
                       "applies exactly it.")
    if digest is not None:
        typer.echo(f"plan digest: {digest}", err=True)
    if plan.of("delete") and not plan.desired:
        typer.echo(f"warning: this deletes every resource of app '{plan.app}'; apply refuses it "
                   "without --prune-all", err=True)
    return 2 if plan.has_changes else 0


def _echo_plan(text: str, color: bool) -> None:
    """Print a plan; on a terminal, colour each change by its sign as terraform does."""
    if not color:
        typer.echo(text, nl=False)
        return
    from rich.console import Console
    from rich.text import Text

    styles = {"+": "green", "~": "yellow", "-": "red", "?": "dim"}
    console = Console(highlight=False, soft_wrap=True)
    for line in text.splitlines():
        sign = line.strip()[:1]
        style = styles.get(sign) if line.startswith("  ") and not line.startswith("      ") else None
        console.print(Text(line, style=style or ""))


@app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("."), help="Manifest folder or file, or a plan saved by `plan --out`."),
    prune: bool = typer.Option(False, "--prune", help="Delete this app's resources no longer in the manifests."),
    prune_all: bool = typer.Option(False, "--prune-all", help="Allow a prune that deletes every resource of the app."),
    prune_data: bool = typer.Option(False, "--prune-data", help=(
        "With --prune: delete a pruned Workspace's data too (without it the data is kept, and "
        "apply says where).")),
    app_name: str = typer.Option(None, "--app", help="App the manifests belong to (default: the folder's name, or an overlay's metadata.name)."),
    lock_timeout: str = typer.Option("0s", "--lock-timeout", help="Wait this long for another apply (e.g. 30s)."),
    expect_digest: str = typer.Option(None, "--expect-digest", metavar="DIGEST",
                                      help="With a plan file: refuse it unless its digest is this one "
                                           "(as `plan --out` printed it)."),
) -> int:
    """Reconcile: provision, compile, record a revision. Exit 0, or 1 when anything failed."""
    if prune_data and not (prune or prune_all):
        from agentform import UsageError

        raise UsageError("--prune-data goes with --prune (it says what a prune does with Workspace data)")
    engine = globals_of(ctx).engine()
    try:
        result = engine.apply(path, app=app_name, prune=prune, prune_all=prune_all,
                              lock_timeout=_seconds(lock_timeout), expect_digest=expect_digest,
                              prune_data=prune_data)
    finally:
        engine.close()
    if result.no_changes:
        typer.echo("no changes")
    for outcome in result.outcomes:
        typer.echo(outcome.line)
    for note in getattr(result, "notes", ()):
        typer.echo(note)
    for line in result.error_lines():
        typer.echo(line, err=True)
    if result.revision is not None:
        n = result.plan.counts()
        typer.echo(f"revision {result.revision.number} recorded: {n['create']} created, "
                   f"{n['update'] + n['drift']} configured, {n['delete']} deleted")
    return result.exit_code


def _seconds(text: str) -> float:
    from agentform import UsageError
    from agentform.specs import parse_duration

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None


# -- get / describe / graph ------------------------------------------------------------------------


def _kind(word: str) -> str:
    from agentform import Engine

    return Engine.kind_of(word)


def _not_found(kind: str, name: str, namespace: str):
    from agentform import NotFound

    return NotFound(f'{kind.lower()} "{name}" not found in namespace "{namespace}"')


def _labels(selectors: list[str]) -> dict[str, str]:
    from agentform import UsageError

    wanted = {}
    for item in selectors or []:
        for part in item.split(","):
            if "=" not in part:
                raise UsageError(f"-l takes key=value (got '{part}')")
            key, value = part.split("=", 1)
            wanted[key.strip()] = value.strip()
    return wanted


def _dump(data, output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.dump(data, sys.stdout)


@app.command("get")
def get_cmd(
    ctx: typer.Context,
    kind_word: str = typer.Argument(..., metavar="KIND", help="agent, agents, Agent, team, pipeline, ..., "
                                    "runs, threads"),
    name: str = typer.Argument(None, help="One resource by name (a run by id or unique prefix)."),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    selector: list[str] = typer.Option(None, "-l", "--selector", help="key=value label filter."),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml"),
    path: Path = typer.Option(None, "--path", help="Also compare with the manifests here (sync)."),
) -> int:
    """List applied resources with sync and health, as Argo CD shows them; also runs and threads."""
    if kind_word.lower() in ("app", "apps"):   # apps: commit in force, last watch error (cmd_watch)
        from agentform.api.cli.cmd_watch import get_apps

        _check_choice(output, ("json", "yaml"), "-o")
        return get_apps(ctx, name, output)
    _check_choice(output, ("json", "yaml"), "-o")
    if kind_word.lower() in ("run", "runs", "thread", "threads"):   # kubectl-style over the streams
        from agentform.api.cli import run_views

        if selector:
            from agentform import UsageError

            raise UsageError(f"{kind_word} have no labels: filter with `agentform runs --status/--thread`")
        show = run_views.get_runs if kind_word.lower().startswith("run") else run_views.get_threads
        return show(globals_of(ctx), name, None if all_namespaces else namespace, output)
    kind = _kind(kind_word)
    wanted = _labels(selector)
    engine = globals_of(ctx).engine()
    try:
        if name:
            statuses = [engine.resource(kind, name, namespace, path=path).status]
        else:
            statuses = engine.resources(kind, namespace=None if all_namespaces else namespace, labels=wanted,
                                        path=path)
    finally:
        engine.close()
    if output:
        data = [s.to_dict() for s in statuses]
        _dump(data[0] if name else data, output)
        return 0
    if not statuses:
        where = "any namespace" if all_namespaces else f'namespace "{namespace}"'
        typer.echo(f"No {kind} resources found in {where}.", err=True)
        return 0
    _table(statuses, all_namespaces)
    return 0


def _table(statuses, all_namespaces: bool) -> None:
    import time

    from rich.console import Console
    from rich.table import Table

    from agentform.api.cli import state_views as views

    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["NAME"] + (["NAMESPACE"] if all_namespaces else []) + ["SYNC", "HEALTH", "REASON", "REVISION", "AGE"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    now = time.time()
    for status in statuses:
        cells = [status.name] + ([status.namespace] if all_namespaces else [])
        cells += [status.sync, status.health, status.reason, str(status.revision),
                  views.age(now - status.revision_at) if status.revision_at is not None else ""]
        table.add_row(*cells)
    Console(highlight=False, soft_wrap=True).print(table)


def _split_target(target: str, namespace: str) -> tuple[str, str, str]:
    """``kind/name`` or ``kind/namespace/name`` (kind as any accepted word)."""
    from agentform import UsageError

    parts = target.split("/")
    if len(parts) == 2:
        return _kind(parts[0]), namespace, parts[1]
    if len(parts) == 3:
        return _kind(parts[0]), parts[1], parts[2]
    raise UsageError(f"expected KIND/NAME such as team/research (got '{target}')")


@app.command("describe")
def describe_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="KIND/NAME"),
    name: str = typer.Argument(None, hidden=True),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option(None, "-o", "--output", help="json | yaml"),
) -> int:
    """One resource in full: spec, conditions, generation, last revision, source file; or a run
    (run/ID): its status, totals, input, output and latest events."""
    _check_choice(output, ("json", "yaml"), "-o")
    whole = f"{target}/{name}" if name else target
    word, _, rest = whole.partition("/")
    if word.lower() in ("run", "runs"):
        from agentform.api.cli import run_views

        return run_views.describe_run(globals_of(ctx), rest, output)
    kind, ns, res_name = _split_target(whole, namespace)
    engine = globals_of(ctx).engine()
    try:
        detail = engine.resource(kind, res_name, ns)
    finally:
        engine.close()
    data = detail.status.to_dict()
    if output:
        _dump(data, output)
        return 0
    typer.echo(describe_text(data, detail.revision))
    return 0


def describe_text(data: dict, revision) -> str:
    from io import StringIO

    from ruamel.yaml import YAML

    lines = [f"{'Name:':<20}{data['name']}", f"{'Namespace:':<20}{data['namespace']}",
             f"{'Kind:':<20}{data['kind']}", f"{'App:':<20}{data['app']}",
             f"{'Labels:':<20}{', '.join(f'{k}={v}' for k, v in data['labels'].items()) or '<none>'}",
             f"{'Source:':<20}{data['source'] or '<unknown>'}"]
    if revision is not None:
        import datetime as dt

        when = dt.datetime.fromtimestamp(revision.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        git = f", git {revision.git_commit[:12]}{' (dirty)' if revision.git_dirty else ''}" if revision.git_commit else ""
        lines.append(f"{'Last revision:':<20}{revision.number} ({when} by {revision.author}{git})")
    lines += [f"{'Generation:':<20}{data['generation']} (observed {data['observedGeneration']})",
              f"{'Sync:':<20}{data['sync']}", f"{'Health:':<20}{data['health']}", "Conditions:",
              f"  {'TYPE':<13}{'STATUS':<9}{'REASON':<18}MESSAGE"]
    for c in data["conditions"]:
        lines.append(f"  {c['type']:<13}{c['status']:<9}{c['reason']:<18}{c['message']}")
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    for title, part in (("Spec:", data["spec"].get("spec")), ("Pinned at apply:", data["spec"].get("resolved"))):
        if part:
            buffer = StringIO()
            yaml.dump(part, buffer)
            lines += [title] + ["  " + line for line in buffer.getvalue().rstrip().splitlines()]
    return "\n".join(lines)


@app.command("graph")
def graph_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="team/NAME|pipeline/NAME"),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    revision: int = typer.Option(None, "--revision", help="The graph as compiled at this revision."),
) -> int:
    """The compiled graph of a team, pipeline or agent as Mermaid."""
    from agentform import UsageError
    from agentform.specs import ResourceKey

    kind, ns, name = _split_target(target, namespace)
    if kind not in ("Team", "Pipeline", "Agent"):
        raise UsageError(f"only teams, pipelines and agents have a graph (got {kind})")
    engine = globals_of(ctx).engine()
    try:
        mermaid = engine.graph_mermaid(ResourceKey(kind, ns, name), revision)
    finally:
        engine.close()
    if mermaid is None:
        raise _not_found(kind, name, ns)
    typer.echo(mermaid, nl=False)
    return 0
