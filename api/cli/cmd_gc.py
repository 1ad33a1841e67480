"""``agentform gc``: delete finished runs past the retention period (Engine.gc)."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of


@app.command("gc")
def gc_cmd(
    ctx: typer.Context,
    older_than: str = typer.Option(None, "--older-than", metavar="AGE", help=(
        "Delete runs that ended more than AGE ago (30d, 12h, 7d12h); default: retention in "
        "<home>/config.yaml, else 30d.")),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; delete nothing."),
    output: str = typer.Option(None, "-o", "--output", help="json|yaml: the report as data."),
) -> None:
    """Delete finished runs past the retention period, their events and artifacts (tool-server
    log sections, detached output). Queued, running and waiting runs always stay; a thread goes
    only as a whole; a fork's origin stays while the fork does. Safe while workers run."""
    from agentform import UsageError

    if output not in (None, "json", "yaml"):
        raise UsageError(f"-o takes json or yaml (got '{output}')")
    engine = globals_of(ctx).engine()
    try:
        report = engine.gc(older_than, dry_run=dry_run)
    finally:
        engine.close()
    if output is not None:
        from agentform.api.cli.cmd_run import dump

        dump(report.to_dict(), output)
        return
    typer.echo(render(report))


def render(report) -> str:
    from agentform import printable

    def when(epoch: float) -> str:
        from datetime import UTC, datetime

        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    verb = "would delete" if report.dry_run else "deleted"
    lines = [f"runs that ended before {when(report.cutoff)} (older than {report.older_than}):"]
    if report.dry_run:
        for run in report.runs:
            lines.append(f"  {run.id}  {run.status:<9}  ended {when(run.ended_at)}  {run.events:>7} events  "
                         f"{printable(run.target, one_line=True)}"
                         + (f"  thread {printable(run.thread, one_line=True)}" if run.thread else ""))
    lines.append(f"{verb} {len(report.runs)} run(s), {report.events:,} event(s), {len(report.threads)} "
                 f"whole thread(s), {len(report.artifacts)} artifact file(s) "
                 f"({report.log_sections} tool-server log section(s))")
    if report.kept:
        lines.append(f"kept {len(report.kept)} expired run(s):")
        lines.extend(f"  {k.id}  {printable(k.reason, one_line=True)}" for k in report.kept)
    return "\n".join(lines)
