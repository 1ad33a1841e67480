"""``approve RUN [--reject] [-m TEXT]``: answer a waiting approval and continue the run here."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of


@app.command("approve")
def approve(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id (or a unique prefix) of a waiting run."),
    reject: bool = typer.Option(False, "--reject", help="Reject: the approval stage fails, and so does the run."),
    message: str = typer.Option(None, "-m", "--message", help="A note recorded with the decision."),
    stage: str = typer.Option(None, "--stage", help="Which approval to answer when several wait (stage name)."),
) -> None:
    """Answer a waiting approval; the run continues in this process and exits like `run`.

    Of two answers at the same moment one continues the run; the other exits 1 naming it.
    """
    import asyncio

    from agentform import Engine

    options = globals_of(ctx)
    with Engine(home=options.home, store=options.store_url) as engine:
        result = asyncio.run(engine.approve(run, approve=not reject, message=message, stage=stage,
                                            on_event=_printer()))
        _summary(result)
    raise typer.Exit(result.exit_code)


def os_user() -> str:
    """Who answers: the OS user of this process."""
    from agentform import Engine

    return Engine.os_user()


def _printer():
    from agentform.api.cli.cmd_run import event_printer

    return event_printer()


def _summary(result) -> None:
    from agentform.api.cli.cmd_run import print_result

    print_result(result, None)
