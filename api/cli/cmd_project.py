"""Project commands: ``init`` (scaffold a manifest repo) and ``schema`` (JSON Schema of the manifests)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from agentform.api.cli import app

GITIGNORE_LINE = ".agentform/"

# The scaffold: an offline team on the scripted model, so `validate`, `apply` and `run`
# work at once with no network and no API key.
SCAFFOLD: dict[str, str] = {
    "models.yaml": """\
# A scripted model plays the turns of scripts/demo.yaml: no network, no API key.
# Swap it for a real one later, e.g. `model: openai/gpt-4o-mini` with an apiKey secretRef.
apiVersion: agentform.dev/v1alpha1
kind: Model
metadata:
  name: demo-model
spec:
  model: scripted
  script: scripts/demo.yaml
  pricing: {inputPerMTok: 0.15, outputPerMTok: 0.60}
""",
    "agents.yaml": """\
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata:
  name: lead
spec:
  model: demo-model
  description: Plans the work, asks the team, writes the answer
  instructions: |
    You lead a small team. Ask the researcher for facts and the writer for a draft,
    then answer the user in a few sentences.
  budget: {maxTurns: 5}
---
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata:
  name: researcher
spec:
  model: demo-model
  description: Finds facts and sources
  instructions: You find facts and name your sources.
---
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata:
  name: writer
spec:
  model: demo-model
  description: Turns notes into clear prose
  instructions: You write short, clear paragraphs.
""",
    "team.yaml": """\
apiVersion: agentform.dev/v1alpha1
kind: Team
metadata:
  name: demo
spec:
  manager: lead
  mode: orchestrate          # the lead gets ask_researcher(task) and ask_writer(task)
  members:
    - agent: researcher
    - agent: writer
  budget: {maxCostUsd: 0.10}
""",
    "scripts/demo.yaml": """\
# Turns of the scripted model, per agent, played in order (each agent has its own cursor).
agents:
  lead:
    - toolCalls:             # both questions in one turn: they run in parallel
        - {name: ask_researcher, arguments: {task: "Three facts about the topic"}}
        - {name: ask_writer, arguments: {task: "A one-paragraph outline"}}
      usage: {input: 400, output: 60}
    - content: "Here is what the team found: three facts, and a paragraph to go with them."
      usage: {input: 900, output: 120}
  researcher:
    - content: "1. Fact one (source A). 2. Fact two (source B). 3. Fact three (source C)."
      usage: {input: 300, output: 80}
  writer:
    - content: "An outline: context, the three facts, what they mean for you."
      usage: {input: 250, output: 70}
""",
    "README.md": """\
# {name}

Manifests for agentform: a team of agents on the offline scripted model.
Try it: `agentform validate && agentform apply && agentform run team/demo -i "Tell me about otters"`.
""",
}


@app.command("init")
def init_command(
    directory: Path = typer.Argument(Path("."), help="Folder to scaffold (created if missing)."),
) -> None:
    """Scaffold a manifest repo with an offline example (scripted model)."""
    from agentform import UsageError

    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a folder")
    existing = [rel for rel in SCAFFOLD if (directory / rel).exists()]
    if existing:
        names = ", ".join(str(directory / rel) for rel in existing)
        raise UsageError(f"refusing to overwrite existing files: {names}")
    name = directory.resolve().name or "agentform"
    for rel, text in SCAFFOLD.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{name}", name) if rel == "README.md" else text, "utf-8")
        print(f"created {path}")
    if _ignore_state(directory / ".gitignore"):
        print(f"added {GITIGNORE_LINE} to {directory / '.gitignore'}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    print(f'next: {where}agentform validate && agentform apply && agentform run team/demo -i "hello"')


def _ignore_state(gitignore: Path) -> bool:
    """Make sure ``.gitignore`` lists the state folder; True when it was added."""
    lines = gitignore.read_text("utf-8").splitlines() if gitignore.exists() else []
    if any(line.strip() in (GITIGNORE_LINE, GITIGNORE_LINE.rstrip("/")) for line in lines):
        return False
    prefix = "" if not lines or gitignore.read_text("utf-8").endswith("\n") else "\n"
    with gitignore.open("a", encoding="utf-8") as handle:
        handle.write(f"{prefix}{GITIGNORE_LINE}\n")
    return True


@app.command("schema")
def schema_command(
    kind: str = typer.Argument(
        None, help="A kind (agent, Team, ...), 'manifest' (default: any kind) or 'script'."
    ),
    out: Path = typer.Option(
        None, "--out", help="Write <kind>.json files into this folder instead of printing."
    ),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when the files in --out (default schemas/) are stale."
    ),
) -> None:
    """Print the JSON Schema of the manifests (what schemas/ holds)."""
    from agentform import Engine

    if check:
        folder = out or Path("schemas")
        stale = Engine.stale_schemas(folder)
        for name in stale:
            print(f"{folder / name}: stale; run `make schemas`", file=sys.stderr)
        raise typer.Exit(1 if stale else 0)
    files = Engine.schemas(kind)   # a kind, manifest or script: that one file; UsageError otherwise
    if out is None:
        sys.stdout.write(Engine.schema_text(next(iter(files.values())) if kind else files["manifest.json"]))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in files.items():
        (out / name).write_text(Engine.schema_text(schema), encoding="utf-8")
        print(f"wrote {out / name}")
