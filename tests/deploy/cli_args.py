"""Parse an ``agentform`` argument list the way the CLI would, without running the command:
global options, the command, its options and arguments (click's parser, no callback)."""

from __future__ import annotations

from typing import Any


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """(command name, its parsed parameters); click's UsageError when the CLI would refuse them."""
    import typer

    from agentform.api.cli import _register_commands, app

    _register_commands()
    group = typer.main.get_command(app)
    ctx = group.make_context("agentform", list(args))
    protected = getattr(ctx, "_protected_args", None)
    if protected is None:
        protected = ctx.protected_args
    name, command, rest = group.resolve_command(ctx, [*protected, *ctx.args])
    sub = command.make_context(name, rest, parent=ctx)
    return name, sub.params
