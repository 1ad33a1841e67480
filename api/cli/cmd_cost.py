"""``agentform cost``: tokens and USD from the runs' streams, grouped (Engine.cost)."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of

GROUPINGS = ("model", "agent", "team", "pipeline", "target")


@app.command("cost")
def cost_cmd(
    ctx: typer.Context,
    by: str = typer.Option("model", "--by", help="Group by model, agent, team (team runs by target), "
                           "pipeline (pipeline runs by target) or target (every run by its target)."),
    since: str = typer.Option(None, "--since", metavar="AGE", help="Only spend of the last AGE: 30m, 24h, 7d."),
    output: str = typer.Option(None, "-o", "--output", help="json|yaml: the report as data."),
) -> None:
    """Tokens and USD from the usage events of every run (any process's), most expensive first."""
    from agentform import UsageError

    if output not in (None, "json", "yaml"):
        raise UsageError(f"-o takes json or yaml (got '{output}')")
    if by not in GROUPINGS:
        raise UsageError(f"--by {by}: use one of {', '.join(GROUPINGS)}")
    engine = globals_of(ctx).engine()
    try:
        report = engine.cost(by=by, since=since)
    finally:
        engine.close()
    if output is not None:
        from agentform.api.cli.cmd_run import dump

        dump(report.to_dict(), output)
        return
    typer.echo(render(report, since))


def render(report, since: str | None) -> str:
    """The report as a table: one row per group, then the total."""
    from agentform import printable

    window = f" in the last {since}" if since else ""
    if not report.rows:
        return f"no usage recorded{window}"
    rows = [(printable(r.key, one_line=True), f"{r.tokens_in:,}", f"{r.tokens_out:,}", _usd(r.cost_usd),
             str(r.turns), str(len(r.runs))) for r in report.rows]
    total = report.total
    footer = ("TOTAL", f"{total.tokens_in:,}", f"{total.tokens_out:,}", _usd(total.cost_usd), str(total.turns),
              str(len(total.runs)))
    header = (report.by.upper(), "TOKENS IN", "TOKENS OUT", "COST", "TURNS", "RUNS")
    widths = [max(len(row[i]) for row in (header, *rows, footer)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join([first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    return "\n".join([line(header), *map(line, rows), line(footer)])


def _usd(value: float) -> str:
    return f"${value:.6f}" if 0 < value < 0.01 else f"${value:,.2f}"
