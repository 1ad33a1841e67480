"""The ``agentform`` command line: global options, error printing, and the command modules.

Each command module (``api/cli/cmd_*.py``) registers its commands on ``app`` and imports what
it needs inside the command body, so ``agentform --help`` and ``validate`` stay light.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

app = typer.Typer(
    name="agentform",
    help="Declarative GitOps engine for teams of LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich-formatted help costs ~125 ms of start-up (bench/validate.py).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    """Options given before the command; every command reads them from ``ctx.obj``."""

    home: Path
    store_url: str | None
    debug: bool

    def engine(self):
        """The Engine these options name (its store is opened on first use; close it after)."""
        from agentform import Engine

        return Engine(home=self.home, store=self.store_url)


@app.callback(invoke_without_command=True)   # so that `agentform --version` needs no command
def _globals(
    ctx: typer.Context,
    home: Path = typer.Option(
        None, "--home", envvar="AGENTFORM_HOME", help="State folder (default ./.agentform)."
    ),
    store: str = typer.Option(
        None, "--store", envvar="AGENTFORM_STORE", help="postgresql://... to keep state in PostgreSQL."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(False, "--version", help=(
        "Print the version and the store's schema version (the highest migration applied), then exit.")),
) -> None:
    ctx.obj = Globals(home=home or Path(".agentform"), store_url=store, debug=debug)
    if version:
        _print_version(ctx.obj)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        ctx.fail("Missing command.")
    from agentform import Engine

    Engine.use_settings(ctx.obj.home)  # <home>/config.yaml, read when first needed


def _print_version(options: Globals) -> None:
    from agentform import Engine

    engine = Engine(home=options.home, store=options.store_url)
    try:
        info = engine.version()
    finally:
        engine.close()
    applied = info["storeSchema"]
    schema = "none yet (no store)" if applied is None else str(applied)
    typer.echo(f"agentform {info['version']}")
    typer.echo(f"store schema {schema} ({info['store']}; this agentform knows up to {info['knownSchema']})")
    if applied is not None and applied > info["knownSchema"]:
        from agentform import StoreError

        raise StoreError(f"the store's schema version {applied} is newer than this agentform knows "
                         f"({info['knownSchema']}); upgrade agentform")


def globals_of(ctx: typer.Context) -> Globals:
    return ctx.find_root().obj


def _register_commands() -> None:
    # Importing these modules only defines commands; their bodies import the heavy parts.
    import importlib

    for module in ("cmd_validate", "cmd_project", "cmd_state", "cmd_run", "cmd_pipeline", "cmd_replay",
                   "cmd_secret", "cmd_worker", "cmd_watch", "cmd_mcp", "cmd_serve", "cmd_token", "cmd_memory",
                   "cmd_cost", "cmd_gc"):
        try:
            importlib.import_module(f"agentform.api.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"agentform.api.cli.{module}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: exit codes per CONTRACT section 2, no tracebacks."""
    import click

    from agentform import AgentformError

    # typer >= 0.29 vendors click as typer._click and raises its own exception classes.
    exit_types, abort_types, click_errors = _click_exception_types(click)
    _redact_std_streams()

    _register_commands()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("AGENTFORM_DEBUG") == "1"
    try:
        result = app(args=args, prog_name="agentform", standalone_mode=False)
    except exit_types as exc:
        sys.exit(exc.exit_code)
    except abort_types:
        sys.exit(130)
    except click_errors as exc:
        # Usage errors exit 1: 2 means "changes" for plan.
        exc.show(file=_Printable(sys.stderr))
        sys.exit(1)
    except AgentformError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        _print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback unless --debug
        if debug:
            raise
        _print_error(exc, unexpected=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _redact_std_streams() -> None:
    from agentform import Engine

    Engine.redact_std_streams()


def _click_exception_types(click) -> tuple[tuple, tuple, tuple]:
    """(exit, abort, usage-error) exception classes of click and of typer's vendored copy."""
    exits, aborts, errors = [click.exceptions.Exit], [click.exceptions.Abort], [click.ClickException]
    try:
        from typer import exceptions as typer_exceptions
        from typer._click import exceptions as vendored
    except ImportError:
        return tuple(exits), tuple(aborts), tuple(errors)
    exits += [getattr(typer_exceptions, "Exit", click.exceptions.Exit)]
    aborts += [getattr(typer_exceptions, "Abort", click.exceptions.Abort)]
    errors += [vendored.ClickException]
    return tuple(exits), tuple(aborts), tuple(errors)


def _print_error(exc: BaseException, unexpected: bool = False) -> None:
    from agentform import ManifestError, printable

    if isinstance(exc, ManifestError):
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)   # Diagnostic.__str__ escapes what it echoes
        return
    text = str(exc) or type(exc).__name__
    if unexpected:
        text = f"{type(exc).__name__}: {text} (run with --debug for a traceback)"
    print(f"error: {printable(text)}", file=sys.stderr)


class _Printable:
    """A stream whose text is written with control and bidi characters escaped: a usage
    error echoes what was typed (an unknown command, a bad option value)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from agentform import printable

        return self._stream.write(printable(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
