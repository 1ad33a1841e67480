"""``token create|list|revoke|audit``: API tokens for ``serve`` (stored hashed, shown once) and
the audit log of the writes made with them."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of

token_app = typer.Typer(help="API tokens for `serve`: create (shown once), list, revoke; the audit log of writes.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")


def _engine(ctx: typer.Context):
    import agentform

    options = globals_of(ctx)
    return agentform.Engine(home=options.home, store=options.store_url)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(data, output: str) -> None:
    from agentform.api.cli.cmd_run import dump

    dump(data, output)


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))   # names and targets are user text, not markup
    Console(width=200).print(table)


@token_app.command("create")
def create_cmd(
    ctx: typer.Context,
    scope: list[str] = typer.Option(..., "--scope", help="read, run or approve (repeatable)."),
    namespace: str = typer.Option(None, "--namespace", "-n", help="Limit the token to this namespace."),
    name: str = typer.Option("", "--name", help="A label for `token list` and the audit log."),
    output: str = typer.Option(None, "--output", "-o", help="json|yaml"),
) -> None:
    """Make a token and print it ONCE (only its SHA-256 is stored)."""
    engine = _engine(ctx)
    try:
        created = engine.token_create(scope, namespace=namespace, name=name)
    finally:
        engine.close()
    if output in ("json", "yaml"):
        _dump(created.to_dict(), output)
        return
    typer.echo(created.token)
    info = created.info
    typer.echo(f"token {info.id}: scopes {','.join(info.scopes)}, namespace {info.namespace or '(all)'}; "
               "shown this once: store it now", err=True)


@token_app.command("list")
def list_cmd(ctx: typer.Context, output: str = typer.Option(None, "--output", "-o", help="json|yaml")) -> None:
    """Tokens: id, name, scopes, namespace, created, last used, revoked."""
    engine = _engine(ctx)
    try:
        items = engine.tokens()
    finally:
        engine.close()
    if output in ("json", "yaml"):
        _dump([t.to_dict() for t in items], output)
        return
    _table(("ID", "NAME", "SCOPES", "NAMESPACE", "CREATED", "LAST USED", "REVOKED"),
           [(t.id, t.name or "-", ",".join(t.scopes), t.namespace or "(all)", _when(t.created_at),
             _when(t.last_used_at), _when(t.revoked_at)) for t in items])


@token_app.command("revoke")
def revoke_cmd(ctx: typer.Context, token_id: str = typer.Argument(..., help="The token's id (`token list`).")) -> None:
    """Revoke a token: every request with it is refused from now on (sessions made with it too)."""
    engine = _engine(ctx)
    try:
        info = engine.token_revoke(token_id)
    finally:
        engine.close()
    typer.echo(f"token {info.id} revoked at {_when(info.revoked_at)}")


@token_app.command("audit")
def audit_cmd(
    ctx: typer.Context,
    token_id: str = typer.Option(None, "--token", help="Only this token's writes."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    output: str = typer.Option(None, "--output", "-o", help="json|yaml"),
) -> None:
    """The audit log of writes through `serve`, newest first."""
    engine = _engine(ctx)
    try:
        entries = engine.audit_log(token_id=token_id, limit=limit)
    finally:
        engine.close()
    if output in ("json", "yaml"):
        _dump([e.to_dict() for e in entries], output)
        return
    _table(("TIME", "TOKEN", "ACTION", "TARGET", "SOURCE", "STATUS", "DETAIL"),
           [(_when(e.at), e.token_id or "-", e.action, e.target, e.source, str(e.status), e.detail[:80])
            for e in entries])
