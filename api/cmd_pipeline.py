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
    from agentform.engine.runtime.approvals import resolve_approval

    options = globals_of(ctx)
    store = options.open_store()
    try:
        printer = _printer()
        result = resolve_approval(store, run, approve=not reject, by=os_user(), message=message,
                                  home=options.home, stage=stage, on_event=printer)
        _summary(result)
    finally:
        store.close()
    raise typer.Exit(result.exit_code)


def os_user() -> str:
    """Who answers: the OS user of this process."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"


def _printer():
    from agentform.api.cmd_run import event_printer

    return event_printer()


def _summary(result) -> None:
    from agentform.api.cmd_run import print_result

    print_result(result, None)
