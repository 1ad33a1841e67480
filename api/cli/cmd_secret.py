"""``agentform secret keygen | seal | public-key | rotate``: thin commands over ``Engine.secret_*``.

A value is only ever read (from stdin, or typed without echo on a terminal) and sealed; what is
printed goes through the redacting std streams of api/cli.py like every other output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from agentform.api.cli import app, globals_of

secret_app = typer.Typer(
    name="secret",
    help="The engine's key pairs; seal a value into a Secret manifest that is safe to commit.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(secret_app, name="secret")


def _engine(ctx: typer.Context):
    from agentform import Engine

    options = globals_of(ctx)
    return Engine(home=options.home, store=options.store_url)


@secret_app.command("keygen")
def keygen_cmd(ctx: typer.Context) -> None:
    """Make the engine's key pair in <home>/keys/ (private key mode 0600). Never replaces a key."""
    info = _engine(ctx).secret_keygen()
    typer.echo(f"key {info.key_id}: private key {info.private_key} (keep it; back it up), "
               f"public key {info.public_key} (safe to share: `agentform secret public-key`)")


@secret_app.command("public-key")
def public_key_cmd(
    ctx: typer.Context,
    output: str = typer.Option("pem", "-o", "--output", help="pem (default) or json ({keyId, publicKey})."),
) -> None:
    """Print the public key values are sealed for: safe to commit; `seal --public-key FILE` seals with it
    where the engine's home is not."""
    from agentform import UsageError

    if output not in ("pem", "json"):
        raise UsageError(f"-o {output}: choose pem or json")
    key_id, pem = _engine(ctx).secret_public_key()
    sys.stdout.write(json.dumps({"keyId": key_id, "publicKey": pem}) + "\n" if output == "json" else pem)


@secret_app.command("seal")
def seal_cmd(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="The Secret's name: the value decrypts only as this Secret."),
    namespace: str = typer.Option("default", "--namespace", "-n", help="The Secret's namespace."),
    public_key: Path = typer.Option(None, "--public-key", metavar="FILE",
                                    help="Seal for this public key (`agentform secret public-key`) "
                                         "instead of the home's: no home needed."),
) -> None:
    """Read a value from stdin and print a Secret manifest holding it sealed (afs2)."""
    from agentform import UsageError

    pem = None
    if public_key is not None:
        try:
            pem = public_key.read_bytes()
        except OSError as exc:
            raise UsageError(f"--public-key {public_key}: cannot read it: {exc.strerror}") from None
    value = _read_value()
    sealed = _engine(ctx).secret_seal(value, namespace=namespace, name=name, public_key=pem)
    sys.stdout.write(sealed.manifest())


def _read_value() -> str:
    """The value from stdin without its line end; typed without echo when stdin is a terminal."""
    from agentform import UsageError

    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass("value (not echoed): ")
    else:
        value = sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise UsageError("no value on stdin: pipe it in, e.g. `printf %s \"$TOKEN\" | agentform secret seal "
                         "--name NAME`")
    return value


@secret_app.command("rotate")
def rotate_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(None, help="Manifest folder whose sealed Secrets are re-sealed in place "
                                           "(none: only make the new key pair)."),
) -> None:
    """Make a new key pair (old pairs are kept by id: pinned revisions still decrypt) and re-seal
    the folder's sealed Secret manifests for it, keeping comments and formatting."""
    result = _engine(ctx).secret_rotate(path)
    key = result.key
    typer.echo(f"key {key.key_id} is current; key {key.retired} is kept in {key.private_key.parent}/ "
               "so values sealed for it still decrypt")
    for file, label in result.resealed:
        typer.echo(f"re-sealed {label} in {file}")
    if path is not None:
        files = len({file for file, _ in result.resealed})
        typer.echo(f"{len(result.resealed)} Secret(s) re-sealed in {files} file(s); commit and apply them")
