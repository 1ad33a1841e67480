"""``agentform validate``: every problem of a manifest tree, each as ``file:line:col: message``.

Stays light: imports only the loader and the checks (pydantic, ruamel.yaml, jinja2), and
prints plain text without rich so that a whole run takes a fraction of a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from agentform.api.cli import app


def _escape(text: str, *, prop: bool = False) -> str:
    from agentform import printable

    # Control and bidi characters escaped first (newlines stay: GitHub shows %0A as a line break).
    text = printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _size(text: str) -> int:
    from agentform import UsageError
    from agentform.specs.common import _to_quantity

    try:
        return _to_quantity(text).bytes
    except ValueError as exc:
        raise UsageError(f"--max-file-size: '{text}' is not a size (use bytes, or 512Ki, 2Mi)") from exc


def _summary(result) -> str:
    errors = [d for d in result.diagnostics if d.severity == "error"]
    warnings = len(result.diagnostics) - len(errors)
    checked = result.manifests
    if not errors:
        tail = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
        return f"ok: {checked} manifest{'s' if checked != 1 else ''} in {result.files} file{'s' if result.files != 1 else ''}{tail}"
    files = len({d.file for d in errors})
    return (f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {files} file{'s' if files != 1 else ''} "
            f"({result.documents} manifest{'s' if result.documents != 1 else ''} checked)")


@app.command()
def validate(
    path: Path = typer.Argument(Path("."), help="A manifest file or a folder (searched recursively)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also list the YAML files skipped as not manifests."),
    fmt: str = typer.Option("text", "--format", help="text, or github (GitHub Actions annotations)."),
    output: str = typer.Option(None, "-o", "--output", help="json: the diagnostics as data."),
    max_file_size: str = typer.Option("1Mi", "--max-file-size", help="Refuse larger files (bytes, or 512Ki, 2Mi)."),
) -> None:
    """Check manifests: schema, references, graphs, templates, scripts. Exit 0 when clean, 1 if not."""
    from agentform import Engine, UsageError

    if fmt not in ("text", "github"):
        raise UsageError(f"--format must be text or github (got '{fmt}')")
    if output not in (None, "json"):
        raise UsageError(f"-o must be json (got '{output}')")
    result = Engine.validate(path, max_file_bytes=_size(max_file_size))
    write = sys.stdout.write
    if output == "json":
        write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        lines = []
        if verbose:
            lines += [f"skipped (not a manifest file): {s}" for s in result.skipped]
        for d in result.diagnostics:
            if fmt == "github":
                level = "error" if d.severity == "error" else "warning"
                where = f"file={_escape(d.file, prop=True)}"
                if d.line:
                    where += f",line={d.line},col={d.col}"
                lines.append(f"::{level} {where}::{_escape(d.message)}")
            else:
                lines.append(str(d))
        lines.append(_summary(result))
        write("\n".join(lines) + "\n")
    sys.stdout.flush()
    if not result.ok:
        raise typer.Exit(code=1)
